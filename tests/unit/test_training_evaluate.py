"""`make evaluate`: a small real run on the committed baseline, the temperature from the card, bad input."""

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from contract import layout, mnist
from training import calibration, evaluate
from training.dataset import DEFAULT_DATA_DIR
from training.hard_variants import VARIANTS

REPO_ROOT = Path(__file__).resolve().parents[2]
BASELINE = REPO_ROOT / "models" / "mnist" / "1"
HAS_MNIST = (REPO_ROOT / DEFAULT_DATA_DIR / "t10k-labels-idx1-ubyte").is_file()
needs_mnist = pytest.mark.skipif(not HAS_MNIST, reason="MNIST missing: run `make data`")
SAMPLES = 40
TEST_LIMIT = 300
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

pytestmark = pytest.mark.unit


def run_evaluate(model_dir: Path, reports: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "training.evaluate",
            "--model-dir",
            str(model_dir),
            "--reports-dir",
            str(reports),
            "--data-dir",
            str(REPO_ROOT / DEFAULT_DATA_DIR),
            "--samples",
            str(SAMPLES),
            "--test-limit",
            str(TEST_LIMIT),
            *extra,
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def baseline_report(tmp_path_factory):
    """`python -m training.evaluate --version 1` with small limits, run once for the module."""
    reports = tmp_path_factory.mktemp("reports")
    result = run_evaluate(BASELINE.parent, reports, "--version", "1")
    assert result.returncode == 0, result.stderr
    return reports, json.loads((reports / "evaluation_v1.json").read_text()), result.stdout


@pytest.mark.slow
@needs_mnist
def test_uncalibrated_baseline_has_before_equal_after(baseline_report):
    _, report, stdout = baseline_report
    section = report["calibration"]
    assert section["temperature"] == 1.0
    assert section["method"] is None
    assert "temperature 1" in section["note"] and "temperature 1" in stdout
    assert set(section["sets"]) == {evaluate.MNIST_TEST_SET, *VARIANTS}
    for name, summary in section["sets"].items():
        assert summary["before"] == summary["after"], name
        assert 0 <= summary["after"]["ece"] <= 1 and summary["after"]["nll"] > 0


@pytest.mark.slow
@needs_mnist
def test_report_keeps_accuracy_and_counts_every_image(baseline_report):
    _, report, _ = baseline_report
    assert report["version"] == 1 and report["model"] == mnist.MODEL_NAME
    assert report["test_examples"] == TEST_LIMIT
    assert sum(map(sum, report["confusion_matrix"])) == TEST_LIMIT
    sets = report["calibration"]["sets"]
    assert sets[evaluate.MNIST_TEST_SET]["n"] == TEST_LIMIT
    assert sets[evaluate.MNIST_TEST_SET]["accuracy"] == pytest.approx(report["test_accuracy"])
    assert report["calibration"]["hard_variants"]["samples"] == SAMPLES
    for name in VARIANTS:
        assert sets[name]["n"] + sum(sets[name]["refused"].values()) == SAMPLES, name
    for name, bins in report["reliability_bins"].items():
        for side in ("before", "after"):
            assert len(bins[side]) == calibration.ECE_BINS
            assert sum(b["count"] for b in bins[side]) == sets[name]["n"], (name, side)
        assert calibration.ece_from_bins(bins["after"]) == pytest.approx(sets[name]["after"]["ece"])


@pytest.mark.slow
@needs_mnist
def test_reports_are_pngs(baseline_report):
    reports, _, _ = baseline_report
    for name in ("confusion_matrix_v1.png", "reliability_v1.png"):
        assert (reports / name).read_bytes()[:8] == PNG_MAGIC, name


@pytest.mark.slow
@needs_mnist
def test_calibrated_version_reports_before_from_the_card_temperature(tmp_path):
    # The baseline's weights with a card that records T = 2: "before" is then the sharper softmax(2 log p).
    version = tmp_path / "models" / "7"
    shutil.copytree(BASELINE, version)
    card_path = layout.model_card_path(version)
    card = json.loads(card_path.read_text())
    card[calibration.CARD_KEY] = {"method": calibration.METHOD, "temperature": 2.0}
    card_path.write_text(json.dumps(card))
    result = run_evaluate(version.parent, tmp_path / "reports", "--samples", "20")
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "reports" / "evaluation_v7.json").read_text())
    section = report["calibration"]
    assert section["temperature"] == 2.0 and section["method"] == calibration.METHOD
    assert "note" not in section
    for name, summary in section["sets"].items():
        assert summary["before"] != summary["after"], name
        bins = report["reliability_bins"][name]
        mean_confidence = {
            side: sum(b["count"] * b["confidence"] for b in bins[side] if b["count"]) for side in bins
        }
        assert mean_confidence["before"] > mean_confidence["after"], name


def test_missing_version_exits_1(tmp_path, capsys):
    assert evaluate.main(["--model-dir", str(tmp_path), "--version", "3"]) == 1
    assert "no version 3" in capsys.readouterr().err


@needs_mnist
def test_unusable_card_temperature_exits_1_with_the_reason(tmp_path, capsys):
    card_path = layout.model_card_path(tmp_path / "4")
    card_path.parent.mkdir(parents=True)
    card_path.write_text(
        json.dumps({calibration.CARD_KEY: {"method": calibration.METHOD, "temperature": -1}})
    )
    code = evaluate.main(
        ["--model-dir", str(tmp_path), "--reports-dir", str(tmp_path / "r"), "--test-limit", "5"]
    )
    assert code == 1
    assert "temperature must be positive" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_through_gateway_gives_model_inputs_and_counts_refusals():
    digit = np.zeros((28, 28), np.uint8)
    digit[6:22, 12:16] = 255  # a "1"
    inverted_big = 255 - np.kron(digit, np.ones((4, 4), np.uint8))  # dark ink on white, 112x112
    images, kept, refused = evaluate.through_gateway(
        [png(inverted_big), png(np.full((28, 28), 255, np.uint8)), b"not an image", png(digit)]
    )
    assert images.shape == (2, mnist.IMAGE_HEIGHT, mnist.IMAGE_WIDTH) and images.dtype == np.float32
    assert kept.tolist() == [0, 3]
    assert refused == {"no_digit": 1, "not_an_image": 1}
    for image in images:  # white on black, in [0, 1], like MNIST
        assert image.max() == pytest.approx(1.0, abs=0.05) and image.min() >= 0
        assert image[0].max() == 0 and image[:, 0].max() == 0


def test_through_gateway_with_nothing_usable_is_empty():
    images, kept, refused = evaluate.through_gateway([b""])
    assert images.shape == (0, 28, 28) and kept.size == 0 and refused == {"not_an_image": 1}


def newest_calibrated_version() -> Path | None:
    """The highest version under models/mnist whose card has calibration measured on all of MNIST test."""
    for _, path in sorted(layout.list_versions(BASELINE.parent).items(), reverse=True):
        try:
            card = json.loads(layout.model_card_path(path).read_text())
        except FileNotFoundError:
            continue
        sets = card.get(calibration.CARD_KEY, {}).get("sets", {})
        if sets.get(evaluate.MNIST_TEST_SET, {}).get("n") == 10_000:
            return path
    return None


@pytest.mark.slow
@needs_mnist
@pytest.mark.skipif(
    newest_calibrated_version() is None, reason="no calibrated version under models/mnist yet"
)
def test_evaluation_reproduces_the_card_calibration_of_the_newest_calibrated_version(tmp_path):
    version = newest_calibrated_version()
    card = json.loads(layout.model_card_path(version).read_text())[calibration.CARD_KEY]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "training.evaluate",
            "--model-dir",
            str(version.parent),
            "--version",
            version.name,
        ]
        + ["--reports-dir", str(tmp_path), "--samples", "20"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    section = json.loads((tmp_path / f"evaluation_v{version.name}.json").read_text())["calibration"]
    assert section["temperature"] == card["temperature"]
    measured, recorded = section["sets"][evaluate.MNIST_TEST_SET], card["sets"][evaluate.MNIST_TEST_SET]
    assert measured["accuracy"] == pytest.approx(recorded["accuracy"], abs=2e-4)  # <= 2 of 10,000 flip
    for side in ("before", "after"):
        assert measured[side]["nll"] == pytest.approx(recorded[side]["nll"], rel=1e-3, abs=1e-4)
        assert measured[side]["ece"] == pytest.approx(recorded[side]["ece"], abs=5e-4)
