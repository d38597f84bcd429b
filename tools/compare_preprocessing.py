"""make compare: accuracy and confidence of standard vs enhanced preprocessing, measured through the gateway.

Sends MNIST test digits and harder variants of them (training/hard_variants.py: inverted, off-centre,
rescaled, thick, thin, noisy, JPEG artefacts) as PNG/JPEG uploads to POST /v1/predict/batch, once per
preprocessing mode, and writes reports/confidence_comparison.{png,json,md}. Uses a running gateway
(--gateway URL) or starts the local model server + gateway itself.
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import requests

from contract.layout import list_versions
from contract.mnist import PREPROCESSING_MODES
from tests.support.processes import REPO_ROOT
from tools.batch_client import BATCH, TIMEOUT_S, predict_batch, start_stack
from training.hard_variants import VARIANTS
from training.idx import read_idx

DATA_DIR = REPO_ROOT / "data" / "mnist"
REPORTS = REPO_ROOT / "reports"
MODES = PREPROCESSING_MODES


def load_test_digits(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`count` MNIST test digits and labels, a fixed random sample."""
    images = read_idx(DATA_DIR / "t10k-images-idx3-ubyte")
    labels = read_idx(DATA_DIR / "t10k-labels-idx1-ubyte")
    chosen = np.random.default_rng(seed).choice(len(images), size=count, replace=False)
    return images[chosen], labels[chosen].astype(int)


def evaluate(url: str, encoded: list[bytes], labels: np.ndarray, mode: str) -> dict:
    """Accuracy, mean confidence, mean probability of the true digit, and how many were refused."""
    results = []
    for start in range(0, len(encoded), BATCH):
        results += predict_batch(url, encoded[start : start + BATCH], {"preprocessing": mode})[0]
    correct, confidence, true_probability, refused = [], [], [], 0
    for result, label in zip(results, labels, strict=True):
        if "digit" not in result:  # e.g. no digit found: counts as wrong with zero confidence
            refused += 1
            correct.append(False)
            confidence.append(0.0)
            true_probability.append(0.0)
            continue
        correct.append(result["digit"] == label)
        confidence.append(result["confidence"])
        true_probability.append(result["probabilities"][label])
    return {
        "accuracy": float(np.mean(correct)),
        "mean_confidence": float(np.mean(confidence)),
        "mean_true_probability": float(np.mean(true_probability)),
        "refused": refused,
        "n": len(results),
    }


def measure(url: str, count: int, seed: int) -> dict:
    """Every variant x mode."""
    digits, labels = load_test_digits(count, seed)
    table = {}
    for name, make in VARIANTS.items():
        rng = np.random.default_rng(seed)
        encoded = [make(digit, rng) for digit in digits]
        table[name] = {mode: evaluate(url, encoded, labels, mode) for mode in MODES}
        print(
            f"{name:11s} "
            + "  ".join(
                f"{mode}: acc {table[name][mode]['accuracy']:.4f} conf "
                f"{table[name][mode]['mean_confidence']:.4f}"
                for mode in MODES
            ),
            file=sys.stderr,
        )
    return table


def markdown(table: dict, count: int, model: dict | None) -> str:
    """The comparison as a Markdown table."""
    lines = [
        f"Standard vs enhanced preprocessing through the gateway, {count} MNIST test digits per variant"
        + (f" (model version {model['version']})" if model else "")
        + ".",
        "",
        "| variant | accuracy standard | accuracy enhanced | mean confidence standard | "
        "mean confidence enhanced | p(true) standard | p(true) enhanced |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, row in table.items():
        s, e = row["standard"], row["enhanced"]
        lines.append(
            f"| {name} | {s['accuracy']:.4f} | {e['accuracy']:.4f} | {s['mean_confidence']:.4f} | "
            f"{e['mean_confidence']:.4f} | {s['mean_true_probability']:.4f} | "
            f"{e['mean_true_probability']:.4f} |"
        )
    hard = [name for name in table if name != "clean"]
    mean = {mode: float(np.mean([table[name][mode]["accuracy"] for name in hard])) for mode in MODES}
    lines += [
        "",
        f"Hard variants, mean accuracy: standard {mean['standard']:.4f}, enhanced {mean['enhanced']:.4f}.",
    ]
    return "\n".join(lines)


def plot(table: dict, path: Path) -> None:
    """Grouped bars: accuracy and mean confidence per variant, standard vs enhanced."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(table)
    x = np.arange(len(names))
    figure, axes = plt.subplots(1, 2, figsize=(13, 4.5), sharey=True)
    for axis, metric, title in (
        (axes[0], "accuracy", "Accuracy"),
        (axes[1], "mean_confidence", "Mean confidence of the prediction"),
    ):
        for offset, mode, colour in ((-0.2, "standard", "#9aa5b1"), (0.2, "enhanced", "#1f6feb")):
            values = [table[name][mode][metric] for name in names]
            axis.bar(x + offset, values, 0.4, label=mode, color=colour)
        axis.set_xticks(x, names, rotation=30, ha="right")
        axis.set_ylim(0, 1.05)
        axis.set_title(title)
        axis.grid(axis="y", alpha=0.3)
    handles, names_ = axes[0].get_legend_handles_labels()
    figure.legend(handles, names_, loc="upper right", ncol=2)
    figure.suptitle("Standard vs enhanced preprocessing on MNIST test digits and harder variants", x=0.4)
    figure.tight_layout(rect=(0, 0, 1, 0.94))
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main() -> int:
    """Measure, print the table, write the PNG, JSON and Markdown reports."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gateway", help="base URL of a running gateway (default: start one)")
    parser.add_argument(
        "--model",
        type=Path,
        default=max(list_versions(REPO_ROOT / "models" / "mnist").items())[1],
        help="SavedModel version to serve when starting the stack (default: the newest)",
    )
    parser.add_argument("--samples", type=int, default=1000, help="MNIST test digits per variant")
    parser.add_argument("--seed", type=int, default=0, help="sampling and augmentation seed")
    args = parser.parse_args()

    services = []
    url = args.gateway
    if url is None:
        work = Path(tempfile.mkdtemp(prefix="compare-preprocessing-"))
        url, services = start_stack(args.model.parent, int(args.model.name), work)
    try:
        model = requests.get(f"{url}/readyz", timeout=TIMEOUT_S).json().get("model")
        table = measure(url, args.samples, args.seed)
    finally:
        for service in services:
            service.stop()
    REPORTS.mkdir(exist_ok=True)
    text = markdown(table, args.samples, model)
    (REPORTS / "confidence_comparison.md").write_text(text + "\n")
    (REPORTS / "confidence_comparison.json").write_text(
        json.dumps({"samples": args.samples, "seed": args.seed, "model": model, "results": table}, indent=2)
    )
    plot(table, REPORTS / "confidence_comparison.png")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
