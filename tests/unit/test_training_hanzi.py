"""training/hanzi.py: the pinned package is verified, parsed into unit-square pen paths, and fails loudly."""

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest

from training import hanzi
from training.dataset import sha256_of

pytestmark = pytest.mark.unit


def _fake_tarball(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, payload in files.items():
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))
    return path


def _character(medians) -> bytes:
    return json.dumps({"strokes": ["M 0 0"] * len(medians), "medians": medians}).encode()


def test_a_tarball_that_is_not_the_pinned_build_is_refused(tmp_path):
    tarball = _fake_tarball(tmp_path / "p.tgz", {"人.json": _character([[[0, 0], [9, 9]]])})
    with pytest.raises(hanzi.HanziFetchError, match="SHA-256 .* != pinned"):
        hanzi.medians_from_tarball(tarball)


def test_the_pinned_build_gives_every_character_and_the_licence(tmp_path, monkeypatch):
    files = {
        "人.json": _character([[[483, 736], [72, 95]], [[474, 477], [986, 90]]]),
        "一.json": _character([[[100, 400], [900, 400]]]),
        "package.json": b'{"name": "hanzi-writer-data"}',
        "ARPHICPL.TXT": b"ARPHIC PUBLIC LICENSE",
    }
    tarball = _fake_tarball(tmp_path / "p.tgz", files)
    monkeypatch.setattr(hanzi, "TARBALL_SHA256", sha256_of(tarball))
    medians, licence = hanzi.medians_from_tarball(tarball)
    assert sorted(medians) == ["一", "人"] and len(medians["人"]) == 2
    assert licence == b"ARPHIC PUBLIC LICENSE"


def test_a_package_without_its_licence_is_refused(tmp_path, monkeypatch):
    tarball = _fake_tarball(tmp_path / "p.tgz", {"一.json": _character([[[0, 0], [9, 9]]])})
    monkeypatch.setattr(hanzi, "TARBALL_SHA256", sha256_of(tarball))
    with pytest.raises(hanzi.HanziFetchError, match="ARPHICPL.TXT"):
        hanzi.medians_from_tarball(tarball)


def test_medians_load_as_unit_square_paths_with_y_down(tmp_path):
    (tmp_path / hanzi.MEDIANS_FILE).write_text(json.dumps({"一": [[[0, 900], [1024, -124]]]}))
    (stroke,) = hanzi.load_medians(tmp_path)[0]
    np.testing.assert_allclose(stroke, [[0.0, 0.0], [1.0, 1.0]])


def test_missing_medians_say_to_run_make_data(tmp_path):
    with pytest.raises(FileNotFoundError, match="make data"):
        hanzi.load_medians(tmp_path / "nowhere")


def test_missing_npm_is_one_clear_error_and_nothing_lands(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    target = tmp_path / "data"
    assert hanzi.main(["--data-dir", str(target)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "npm" in err[0]
    assert not (target / hanzi.MEDIANS_FILE).exists()


def test_the_fetched_data_holds_the_whole_package():
    characters = hanzi.load_medians()
    assert len(characters) == 9574
    assert all(len(strokes) >= 1 for strokes in characters)
