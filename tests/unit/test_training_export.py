"""`python -m training.export`: a published version is never written into; a copy with model.tflite is."""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from contract import layout
from serving.model_server.tflite import read_signature_defs
from training.export import STAGING_PREFIX, version_size_bytes, write_saved_model
from training.model import build_model
from training.warmup import write_warmup_requests

REPO_ROOT = Path(__file__).resolve().parents[2]


def run_export(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "training.export", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )


def snapshot(directory: Path) -> dict[str, str]:
    """Every file under `directory` by relative path, as a SHA-256 of its bytes."""
    return {
        p.relative_to(directory).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def old_version(tmp_path_factory) -> Path:
    """A version as exported before model.tflite existed: SavedModel, warm-up records, model card."""
    version_dir = tmp_path_factory.mktemp("models") / "mnist" / "1"
    write_saved_model(build_model(dense_units=8), version_dir)
    write_warmup_requests(version_dir)
    card = {"model": "mnist", "test_accuracy": 0.5, "size_bytes": version_size_bytes(version_dir)}
    layout.model_card_path(version_dir).write_text(json.dumps(card) + "\n")
    return version_dir


@pytest.fixture(scope="module")
def published(old_version):
    before = snapshot(old_version)
    result = run_export(str(old_version))
    return before, result


def test_the_published_version_is_byte_for_byte_unchanged(old_version, published):
    before, result = published
    assert result.returncode == 0, result.stderr[-3000:]
    assert snapshot(old_version) == before
    assert not layout.tflite_path(old_version).exists()


def test_a_new_version_is_published_with_model_tflite(old_version, published):
    _, result = published
    new = old_version.parent / "2"
    assert f"published {new}" in result.stdout
    assert set(read_signature_defs(layout.tflite_path(new).read_bytes())) == {"serving_default"}
    # Everything else is the old version's files, unchanged but the card.
    old_files, new_files = snapshot(old_version), snapshot(new)
    card = layout.model_card_path(old_version).relative_to(old_version).as_posix()
    assert {k: v for k, v in new_files.items() if k not in (card, layout.TFLITE_FILE)} == {
        k: v for k, v in old_files.items() if k != card
    }


def test_the_new_versions_card_tells_its_true_size(old_version, published):
    new = old_version.parent / "2"
    card = json.loads(layout.model_card_path(new).read_text())
    assert card["size_bytes"] == version_size_bytes(new)
    # The card is not counted (it cannot hold its own size); everything else is, model.tflite included.
    assert card["size_bytes"] == version_size_bytes(old_version) + layout.tflite_path(new).stat().st_size
    assert card["published_from_version"] == 1
    assert card["test_accuracy"] == 0.5  # the same model, the same measurements


def test_no_staging_directory_is_left(old_version, published):
    assert sorted(p.name for p in old_version.parent.iterdir()) == ["1", "2"]
    assert not [p for p in old_version.parent.iterdir() if p.name.startswith(STAGING_PREFIX)]


def test_a_version_that_has_model_tflite_is_refused(old_version, published):
    new = old_version.parent / "2"
    before = snapshot(old_version.parent)
    result = run_export(str(new))
    assert result.returncode == 1
    assert "already has model.tflite" in result.stderr and "Traceback" not in result.stderr
    assert snapshot(old_version.parent) == before


def test_a_missing_version_is_a_clear_error(tmp_path):
    result = run_export(str(tmp_path / "9"))
    assert result.returncode == 1
    assert "has no saved_model.pb" in result.stderr and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []
