"""Temperature scaling and the measures that judge it: ECE, NLL, reliability bins and diagram (NumPy only).

Conventions: `probabilities` are [n, classes] rows that sum to 1, `logits` [n, classes], `labels` [n]
integer classes. The calibrated model answers softmax(logits / T); T > 1 softens an over-confident model.
"""

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np

CARD_KEY = "calibration"  # the model card's section (training/train.py writes it, evaluate reads it)
METHOD = "temperature_scaling"
ECE_BINS = 15
# Search range for T: a CNN off by more than 100x either way is broken, not mis-calibrated.
TEMPERATURE_BOUNDS = (1e-2, 1e2)
# log T tolerance of the search: 1e-6 relative in T, far below what changes ECE or NLL.
LOG_T_TOLERANCE = 1e-6
NLL_EPS = 1e-12  # floor for p(true label), so one underflowed probability does not make NLL infinite


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64, shifted by the row maximum so large logits do not overflow."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _check(scores: np.ndarray, labels: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels)
    if scores.ndim != 2 or scores.shape[0] == 0 or scores.shape[1] < 2:
        raise ValueError(f"{what} must be [n, classes] with n >= 1 and classes >= 2, got {scores.shape}")
    if labels.shape != (scores.shape[0],):
        raise ValueError(f"labels must be [{scores.shape[0]}], got {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 or labels.max() >= scores.shape[1]:
        raise ValueError(f"labels must be integers in [0, {scores.shape[1] - 1}]")
    if not np.all(np.isfinite(scores)):
        raise ValueError(f"{what} must be finite")
    return scores, labels.astype(np.int64)


def _nll_of_logits(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    z = logits / temperature
    z = z - z.max(axis=1, keepdims=True)
    log_normaliser = np.log(np.exp(z).sum(axis=1))
    return float(np.mean(log_normaliser - z[np.arange(len(labels)), labels]))


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The T > 0 that minimises the mean NLL of softmax(logits / T) on (logits, labels).

    Golden-section search on log T within TEMPERATURE_BOUNDS: the NLL is convex in 1/T, so it has one
    minimum along log T and the search is exact to LOG_T_TOLERANCE and deterministic. Log-probabilities
    work as well as logits (softmax ignores the per-row shift). A minimum at a bound returns the bound.
    """
    logits, labels = _check(logits, labels, "logits")
    low, high = (math.log(bound) for bound in TEMPERATURE_BOUNDS)
    ratio = (math.sqrt(5) - 1) / 2

    def nll(log_t: float) -> float:
        return _nll_of_logits(logits, labels, math.exp(log_t))

    a, b = high - ratio * (high - low), low + ratio * (high - low)
    nll_a, nll_b = nll(a), nll(b)
    while high - low > LOG_T_TOLERANCE:
        if nll_a <= nll_b:
            high, b, nll_b = b, a, nll_a
            a = high - ratio * (high - low)
            nll_a = nll(a)
        else:
            low, a, nll_a = a, b, nll_b
            b = low + ratio * (high - low)
            nll_b = nll(b)
    return math.exp((low + high) / 2)


def negative_log_likelihood(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Mean -log p(true label), with p floored at NLL_EPS (nats)."""
    probabilities, labels = _check(probabilities, labels, "probabilities")
    true = probabilities[np.arange(len(labels)), labels]
    return float(np.mean(-np.log(np.maximum(true, NLL_EPS))))


def reliability_bins(probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> list[dict]:
    """Top-label reliability in `bins` equal-width confidence bins (lower, upper].

    Each bin: lower, upper, count, mean confidence and accuracy of its predictions (None when empty).
    """
    probabilities, labels = _check(probabilities, labels, "probabilities")
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    # Bin i holds confidences in (i/bins, (i+1)/bins]; a confidence of exactly 0 goes to the first bin.
    index = np.clip(np.ceil(confidence * bins).astype(np.int64) - 1, 0, bins - 1)
    count = np.bincount(index, minlength=bins)
    confidence_sum = np.bincount(index, weights=confidence, minlength=bins)
    correct_sum = np.bincount(index, weights=correct.astype(np.float64), minlength=bins)
    return [
        {
            "lower": i / bins,
            "upper": (i + 1) / bins,
            "count": int(count[i]),
            "confidence": float(confidence_sum[i] / count[i]) if count[i] else None,
            "accuracy": float(correct_sum[i] / count[i]) if count[i] else None,
        }
        for i in range(bins)
    ]


def ece_from_bins(bins: list[dict]) -> float:
    """Expected calibration error of reliability bins: sum over bins of share * |accuracy - confidence|."""
    total = sum(b["count"] for b in bins)
    if total == 0:
        raise ValueError("no predictions in the bins")
    return float(sum(b["count"] / total * abs(b["accuracy"] - b["confidence"]) for b in bins if b["count"]))


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """Standard top-label ECE with `bins` equal-width confidence bins (a fraction, not a percentage)."""
    return ece_from_bins(reliability_bins(probabilities, labels, bins))


def uncalibrated_from(calibrated_probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """The model's softmax before temperature scaling, from the calibrated probabilities it serves.

    p_cal = softmax(z / T), so T * log p_cal = z - T * logsumexp(z / T), and its softmax is softmax(z).
    Probabilities that underflowed to 0 are floored at the smallest float64, so they stay ~0.
    T = 1 (an uncalibrated version) returns the probabilities unchanged, as float64.
    """
    if not temperature > 0 or not math.isfinite(temperature):
        raise ValueError(f"temperature must be a positive finite number, got {temperature}")
    probabilities = np.asarray(calibrated_probabilities, dtype=np.float64)
    if temperature == 1.0:
        return probabilities.copy()
    log_p = np.log(np.maximum(probabilities, np.finfo(np.float64).tiny))
    return softmax(temperature * log_p)


def set_summary(before: np.ndarray, after: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> dict:
    """n, accuracy, and ECE and NLL before and after calibration for one set."""
    return {
        "n": int(len(labels)),
        "accuracy": float(np.mean(np.asarray(after).argmax(axis=1) == np.asarray(labels))),
        "before": {
            "ece": expected_calibration_error(before, labels, bins),
            "nll": negative_log_likelihood(before, labels),
        },
        "after": {
            "ece": expected_calibration_error(after, labels, bins),
            "nll": negative_log_likelihood(after, labels),
        },
    }


def calibration_section(
    probabilities_by_set: Mapping[str, tuple[np.ndarray, np.ndarray]],
    temperature: float,
    *,
    fitted_on: str | None = None,
    bins: int = ECE_BINS,
) -> dict:
    """The model card's calibration section from each set's (calibrated probabilities, labels).

    Per set: n, accuracy, and ECE (`bins` bins) and NLL before (recovered with `uncalibrated_from`) and
    after. `fitted_on` says what T was fitted on; it is left out when not given.
    """
    section: dict = {"method": METHOD, "temperature": float(temperature)}
    if fitted_on is not None:
        section["fitted_on"] = fitted_on
    section["ece_bins"] = bins
    section["sets"] = {
        name: set_summary(uncalibrated_from(probabilities, temperature), probabilities, labels, bins)
        for name, (probabilities, labels) in probabilities_by_set.items()
    }
    return section


def temperature_from_card(card: Mapping) -> float | None:
    """The temperature a version's model card records, or None when the version was not calibrated."""
    section = card.get(CARD_KEY)
    if not isinstance(section, Mapping) or section.get("method") != METHOD:
        return None
    temperature = section.get("temperature")
    if isinstance(temperature, bool) or not isinstance(temperature, int | float):
        raise ValueError(f"model card {CARD_KEY}.temperature is not a number: {temperature!r}")
    if not temperature > 0 or not math.isfinite(temperature):
        raise ValueError(f"model card {CARD_KEY}.temperature must be positive and finite: {temperature}")
    return float(temperature)


def plot_reliability_diagram(sets: Mapping[str, tuple[list[dict], list[dict]]], path: Path) -> None:
    """One panel per set: accuracy per confidence bin before and after calibration, against the diagonal.

    `sets` maps a set name to (before_bins, after_bins) from `reliability_bins`; each panel's legend
    gives the ECE, and the number at the foot of each bin how many predictions it holds (after).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(sets)
    if not names:
        raise ValueError("no sets to plot")
    columns = min(3, len(names))
    rows = math.ceil(len(names) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 4.0 * rows), squeeze=False)
    for axis in axes.flat[len(names) :]:
        axis.set_visible(False)
    for axis, name in zip(axes.flat, names, strict=False):
        before, after = sets[name]
        width = before[0]["upper"] - before[0]["lower"]
        for bins, offset, colour, label in (
            (before, -0.25, "#d1242f", "before"),
            (after, 0.25, "#1f6feb", "after"),
        ):
            filled = [b for b in bins if b["count"]]
            axis.bar(
                [(b["lower"] + b["upper"]) / 2 + offset * width for b in filled],
                [b["accuracy"] for b in filled],
                width * 0.5,
                color=colour,
                alpha=0.85,
                label=f"{label} (ECE {ece_from_bins(bins):.2%})",
            )
        # Bins with a handful of predictions swing wildly; their counts say how much each bar weighs.
        for b in after:
            if b["count"]:
                axis.text(
                    (b["lower"] + b["upper"]) / 2,
                    0.02,
                    str(b["count"]),
                    ha="center",
                    va="bottom",
                    fontsize=6,
                    rotation=90,
                    color="white" if b["accuracy"] > 0.15 else "black",
                )
        axis.plot([0, 1], [0, 1], color="black", linewidth=0.8, linestyle="--", label="perfect")
        n = sum(b["count"] for b in after)
        axis.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="confidence", ylabel="accuracy", title=f"{name} (n={n})")
        axis.legend(loc="upper left", fontsize=8)
        axis.grid(alpha=0.3)
    figure.suptitle("Reliability: accuracy per confidence bin, before and after temperature scaling")
    figure.tight_layout(rect=(0, 0, 1, 0.96))
    figure.savefig(path, dpi=110)
    plt.close(figure)
