"""Temperature scaling, ECE, NLL and reliability bins on synthetic logits whose right answers are known."""

import math

import numpy as np
import pytest

from training import calibration
from training.calibration import (
    calibration_section,
    ece_from_bins,
    expected_calibration_error,
    fit_temperature,
    negative_log_likelihood,
    plot_reliability_diagram,
    reliability_bins,
    softmax,
    temperature_from_card,
    uncalibrated_from,
)

pytestmark = pytest.mark.unit


def calibrated_set(n: int, seed: int, classes: int = 10, scale: float = 3.0):
    """Logits and labels drawn from softmax(logits): calibrated at T = 1 by construction."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, scale, (n, classes))
    probabilities = softmax(logits)
    cumulative = probabilities.cumsum(axis=1)
    labels = (rng.random((n, 1)) > cumulative).sum(axis=1)
    return logits, np.minimum(labels, classes - 1)


def test_overconfident_set_gets_temperature_above_one_and_lower_nll():
    logits, labels = calibrated_set(20_000, seed=1)
    overconfident = 2.5 * logits  # the same ranking, 2.5x too sharp
    temperature = fit_temperature(overconfident, labels)
    assert temperature > 1
    assert temperature == pytest.approx(2.5, rel=0.05)
    before = negative_log_likelihood(softmax(overconfident), labels)
    after = negative_log_likelihood(softmax(overconfident / temperature), labels)
    assert after < before
    assert expected_calibration_error(softmax(overconfident / temperature), labels) < 0.5 * (
        expected_calibration_error(softmax(overconfident), labels)
    )


def test_underconfident_set_gets_temperature_below_one():
    logits, labels = calibrated_set(20_000, seed=2)
    assert fit_temperature(logits / 2, labels) == pytest.approx(0.5, rel=0.05)


def test_fitted_temperature_is_the_grid_minimum_and_deterministic():
    logits, labels = calibrated_set(3_000, seed=3)
    logits = 1.7 * logits
    temperature = fit_temperature(logits, labels)
    assert fit_temperature(logits, labels) == temperature
    grid = np.exp(np.linspace(math.log(0.5), math.log(5), 2001))
    nll = [negative_log_likelihood(softmax(logits / t), labels) for t in grid]
    best = grid[int(np.argmin(nll))]
    assert temperature == pytest.approx(best, rel=2e-3)
    assert negative_log_likelihood(softmax(logits / temperature), labels) <= min(nll) + 1e-9


def test_log_probabilities_fit_the_same_temperature_as_logits():
    logits, labels = calibrated_set(2_000, seed=4)
    log_probabilities = np.log(softmax(3 * logits))
    assert fit_temperature(log_probabilities, labels) == pytest.approx(fit_temperature(3 * logits, labels))


def test_perfectly_separable_set_stops_at_the_lower_bound():
    logits = np.array([[5.0, 0.0], [0.0, 5.0]])
    temperature = fit_temperature(logits, np.array([0, 1]))
    assert temperature == pytest.approx(calibration.TEMPERATURE_BOUNDS[0], rel=1e-4)


def test_ece_of_a_perfectly_calibrated_set_is_near_zero():
    logits, labels = calibrated_set(200_000, seed=5)
    assert expected_calibration_error(softmax(logits), labels) < 0.005


def test_ece_and_nll_by_hand():
    # Bin (0.8667, 0.9333]: confidences 0.9 x 4, 2 right -> |0.5 - 0.9| = 0.4 on 4 of 5 predictions.
    # Bin (0.6, 0.6667]: one confidence 0.65, right -> |1 - 0.65| = 0.35 on 1 of 5.
    probabilities = np.array([[0.9, 0.1]] * 4 + [[0.35, 0.65]])
    labels = np.array([0, 0, 1, 1, 1])
    assert expected_calibration_error(probabilities, labels) == pytest.approx(0.8 * 0.4 + 0.2 * 0.35)
    expected_nll = (2 * -math.log(0.9) + 2 * -math.log(0.1) - math.log(0.65)) / 5
    assert negative_log_likelihood(probabilities, labels) == pytest.approx(expected_nll)


def test_nll_floors_a_zero_probability():
    nll = negative_log_likelihood(np.array([[1.0, 0.0]]), np.array([1]))
    assert nll == pytest.approx(-math.log(calibration.NLL_EPS))


def test_bins_count_every_prediction_once():
    logits, labels = calibrated_set(5_001, seed=6)
    bins = reliability_bins(softmax(logits), labels)
    assert len(bins) == calibration.ECE_BINS
    assert sum(b["count"] for b in bins) == 5_001
    assert bins[0]["lower"] == 0 and bins[-1]["upper"] == 1
    for b in bins:
        if b["count"]:
            assert b["lower"] < b["confidence"] <= b["upper"]
            assert 0 <= b["accuracy"] <= 1
        else:
            assert b["confidence"] is None and b["accuracy"] is None


def test_confidence_on_a_bin_edge_goes_to_the_lower_bin():
    bins = reliability_bins(np.array([[1.0, 0.0], [0.6, 0.4]]), np.array([0, 0]), bins=5)
    assert [b["count"] for b in bins] == [0, 0, 1, 0, 1]


def test_uncalibrated_from_round_trip():
    logits, _ = calibrated_set(1_000, seed=7)
    for temperature in (0.7, 1.6, 4.0):
        served = softmax(logits / temperature).astype(np.float32)
        recovered = uncalibrated_from(served, temperature)
        np.testing.assert_allclose(recovered, softmax(logits), atol=2e-6)
        np.testing.assert_allclose(recovered.sum(axis=1), 1.0, atol=1e-12)


def test_uncalibrated_from_with_temperature_one_is_the_identity():
    probabilities = softmax(calibrated_set(100, seed=8)[0])
    np.testing.assert_array_equal(uncalibrated_from(probabilities, 1.0), probabilities)


@pytest.mark.parametrize("temperature", [0.0, -1.0, math.inf, math.nan])
def test_uncalibrated_from_refuses_a_bad_temperature(temperature):
    with pytest.raises(ValueError, match="temperature"):
        uncalibrated_from(np.array([[0.5, 0.5]]), temperature)


@pytest.mark.parametrize(
    ("scores", "labels", "message"),
    [
        (np.zeros((3,)), np.zeros(3, int), r"\[n, classes\]"),
        (np.zeros((0, 10)), np.zeros(0, int), r"\[n, classes\]"),
        (np.zeros((3, 10)), np.zeros(2, int), "labels must be"),
        (np.zeros((3, 10)), np.array([0, 1, 10]), "labels must be integers"),
        (np.zeros((3, 10)), np.array([0.0, 1.0, 2.0]), "labels must be integers"),
        (np.full((3, 10), np.nan), np.zeros(3, int), "finite"),
    ],
)
def test_bad_inputs_are_refused(scores, labels, message):
    for measure in (fit_temperature, negative_log_likelihood, expected_calibration_error):
        with pytest.raises(ValueError, match=message):
            measure(scores, labels)


def test_calibration_section_reports_before_and_after_per_set():
    logits, labels = calibrated_set(10_000, seed=9)
    overconfident = 2.0 * logits
    temperature = fit_temperature(overconfident, labels)
    served = softmax(overconfident / temperature)
    section = calibration_section(
        {"test": (served, labels), "small": (served[:100], labels[:100])}, temperature, fitted_on="valid"
    )
    assert section["method"] == calibration.METHOD
    assert section["temperature"] == temperature
    assert section["fitted_on"] == "valid"
    assert section["ece_bins"] == 15
    test = section["sets"]["test"]
    assert test["n"] == 10_000 and section["sets"]["small"]["n"] == 100
    assert test["accuracy"] == pytest.approx(np.mean(served.argmax(axis=1) == labels))
    assert test["before"]["nll"] == pytest.approx(negative_log_likelihood(softmax(overconfident), labels))
    assert test["after"]["nll"] < test["before"]["nll"]
    assert test["after"]["ece"] < test["before"]["ece"]


def test_calibration_section_without_temperature_has_before_equal_after():
    logits, labels = calibrated_set(1_000, seed=10)
    section = calibration_section({"test": (softmax(logits), labels)}, 1.0)
    assert "fitted_on" not in section
    assert section["sets"]["test"]["before"] == section["sets"]["test"]["after"]


def test_temperature_from_card():
    assert temperature_from_card({}) is None
    assert temperature_from_card({"calibration": {"method": "other", "temperature": 2}}) is None
    assert temperature_from_card({"calibration": {"method": calibration.METHOD, "temperature": 1.3}}) == 1.3
    for bad in ("1.3", True, 0, -2.0):
        with pytest.raises(ValueError, match="temperature"):
            temperature_from_card({"calibration": {"method": calibration.METHOD, "temperature": bad}})


def test_ece_from_bins_refuses_empty_bins():
    with pytest.raises(ValueError):
        ece_from_bins([{"count": 0, "confidence": None, "accuracy": None}])


def test_reliability_diagram_is_a_png(tmp_path):
    logits, labels = calibrated_set(2_000, seed=11)
    sets = {
        name: (reliability_bins(softmax(2 * logits), labels), reliability_bins(softmax(logits), labels))
        for name in ("a", "b", "c", "d")
    }
    path = tmp_path / "reliability.png"
    plot_reliability_diagram(sets, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
