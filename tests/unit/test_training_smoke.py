"""A tiny real training run: loss goes down, a version appears atomically, the signature is the contract."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from contract import mnist
from tests.support.saved_model import contract_signature, describe_signature
from training.dataset import DEFAULT_DATA_DIR

REPO_ROOT = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (REPO_ROOT / DEFAULT_DATA_DIR / "t10k-labels-idx1-ubyte").is_file(),
        reason="MNIST missing: run `make data`",
    ),
]


def run_training(model_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    command = [
        sys.executable,
        "-m",
        "training.train",
        "--limit",
        "400",
        "--validation-size",
        "40",
        "--test-limit",
        "300",
        "--epochs",
        "2",
        "--batch-size",
        "32",
        "--outliers",
        "300",
        "--rendered-digits",
        "100",
        "--tuning-digits",
        "100",
        "--transformed-digits",
        "100",
        "--quiet",
        "--model-dir",
        str(model_dir),
        *extra,
    ]
    return subprocess.run(
        command,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={"TF_CPP_MIN_LOG_LEVEL": "2", "PATH": "/usr/bin:/bin"},
    )


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model_dir = tmp_path_factory.mktemp("models") / "mnist"
    (model_dir / "7").mkdir(parents=True)  # an existing version: the export must go above it
    (model_dir / "notes").mkdir()  # non-numeric names are not versions
    result = run_training(model_dir)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return model_dir, result


def test_new_version_is_highest_plus_one(exported):
    model_dir, result = exported
    assert (model_dir / "8" / "saved_model.pb").is_file()
    assert f"exported {model_dir / '8'}" in result.stdout


def test_no_staging_directory_is_left(exported):
    model_dir, _ = exported
    assert sorted(p.name for p in model_dir.iterdir()) == ["7", "8", "notes"]


def test_signature_matches_contract(exported):
    model_dir, _ = exported
    assert describe_signature(model_dir / "8") == contract_signature()


def test_loss_went_down_and_card_is_complete(exported):
    model_dir, _ = exported
    card = json.loads((model_dir / "8" / "assets.extra" / "model_card.json").read_text())
    losses = card["history"]["loss"]
    assert len(losses) == 2 and losses[-1] < losses[0]
    assert card["test_examples"] == 300
    assert 0.0 <= card["test_accuracy"] <= 1.0
    assert sum(map(sum, card["confusion_matrix"])) == 300
    assert set(card["per_class_accuracy"]) == {str(d) for d in range(10)}
    assert card["hyperparameters"]["epochs"] == 2 and card["hyperparameters"]["seed"] == 42
    assert set(card["data"]["sha256"]) == {
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    }
    assert card["training_time_s"] > 0


def test_card_size_counts_every_file_but_the_card_model_tflite_included(exported):
    from training.export import version_size_bytes

    model_dir, _ = exported
    card = json.loads((model_dir / "8" / "assets.extra" / "model_card.json").read_text())
    assert (model_dir / "8" / "model.tflite").stat().st_size > 0
    assert card["size_bytes"] == version_size_bytes(model_dir / "8")


def test_warmup_records_are_written(exported):
    model_dir, _ = exported
    assert (model_dir / "8" / "assets.extra" / "tf_serving_warmup_requests").stat().st_size > 0


def test_card_records_the_judgement_it_exported(exported):
    model_dir, _ = exported
    card = json.loads((model_dir / "8" / "assets.extra" / "model_card.json").read_text())
    judgement = card["digit_judgement"]
    assert judgement["training_outliers_rejected"]["n"] > 0
    assert set(judgement["tuned_on"]) == {"mnist_validation", "drawn", "printed"}
    assert 0.0 <= judgement["mnist_test_false_reject_rate"] <= 1.0


def test_without_non_digits_no_judgement_is_exported(tmp_path):
    # A detector that never saw a non-digit would call everything a digit: better no judgement at all.
    result = run_training(tmp_path, "--outliers", "0", "--tuning-digits", "0", "--epochs", "1")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    outputs = describe_signature(tmp_path / "1")["outputs"]
    assert mnist.DIGIT_SCORE_KEY not in outputs and mnist.IS_DIGIT_KEY not in outputs
    card = json.loads((tmp_path / "1" / "assets.extra" / "model_card.json").read_text())
    assert card["digit_judgement"]["exported"] is False
    assert set(card["signature"]["outputs"]) == set(outputs)
    assert "no digit judgement" in result.stdout


def test_explicit_existing_version_is_refused(exported):
    model_dir, _ = exported
    before = sorted(p.name for p in model_dir.iterdir())
    result = run_training(model_dir, "--version", "8", "--epochs", "1")
    assert result.returncode != 0
    assert "never overwritten" in result.stderr
    assert sorted(p.name for p in model_dir.iterdir()) == before


def test_export_never_overwrites_and_cleans_staging(tmp_path):
    from training.export import VersionExistsError, export_model
    from training.model import build_model

    (tmp_path / "3").mkdir()
    with pytest.raises(VersionExistsError):
        export_model(build_model(dense_units=8), tmp_path, version=3)
    assert [p.name for p in tmp_path.iterdir()] == ["3"]
    assert list((tmp_path / "3").iterdir()) == []
