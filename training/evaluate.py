"""Evaluate an exported SavedModel: MNIST test accuracy, and calibration on MNIST test and hard variants.

`make evaluate` (`python -m training.evaluate --version N`) writes reports/evaluation_vN.json,
reports/confusion_matrix_vN.png and reports/reliability_vN.png. The hard variants (training/hard_variants.py)
are encoded as uploads and decoded and preprocessed by the gateway's own functions, so they reach the
model as they would through the gateway.
"""

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

from contract import layout, mnist
from training import calibration
from training.hard_variants import VARIANTS

EVAL_BATCH = 1000
HARD_SAMPLES = 2000  # digits per hard variant: ECE to about +-0.5 points, in about a minute for all
MNIST_TEST_SET = "mnist_test"  # the set name the model card uses for the raw MNIST test images


def load_serving_default(model_path: Path):
    """The version's `serving_default` signature as a callable (loads TensorFlow)."""
    import tensorflow as tf

    return tf.saved_model.load(str(model_path)).signatures[mnist.SIGNATURE_NAME]


def predict(signature, images: np.ndarray) -> dict[str, np.ndarray]:
    """Every `serving_default` output for [n, 28, 28] images: uint8 (0-255) or float in [0, 1]."""
    import tensorflow as tf

    if images.dtype == np.uint8:
        images = images.astype(np.float32) / 255.0
    parts = [
        signature(**{mnist.INPUT_KEY: tf.constant(images[i : i + EVAL_BATCH, ..., None], tf.float32)})
        for i in range(0, len(images), EVAL_BATCH)
    ]
    return {key: np.concatenate([part[key].numpy() for part in parts]) for key in parts[0]}


def predict_saved_model(model_path: Path, images: np.ndarray) -> np.ndarray:
    """Run the `serving_default` signature over uint8 [n, 28, 28] images; returns probabilities."""
    return predict(load_serving_default(model_path), images)[mnist.PROBABILITIES_KEY]


def metrics_from(labels: np.ndarray, predictions: np.ndarray) -> dict:
    """Accuracy, per-class accuracy and confusion matrix (rows: true digit, columns: predicted)."""
    confusion = np.zeros((mnist.NUM_CLASSES, mnist.NUM_CLASSES), dtype=np.int64)
    np.add.at(confusion, (labels.astype(np.int64), predictions.astype(np.int64)), 1)
    per_class = confusion.diagonal() / np.maximum(confusion.sum(axis=1), 1)
    return {
        "test_accuracy": float(confusion.trace() / max(len(labels), 1)),
        "test_examples": int(len(labels)),
        "errors": int(len(labels) - confusion.trace()),
        "per_class_accuracy": {str(d): round(float(a), 6) for d, a in enumerate(per_class)},
        "confusion_matrix": confusion.tolist(),
    }


def gateway_inputs(encoded: list[bytes]) -> tuple[np.ndarray, list]:
    """Decode and preprocess uploads exactly as the gateway does with its default preprocessing.

    Returns the model inputs float32 [m, 28, 28] of the uploads the gateway accepts, in order, and for each
    upload the GatewayError the gateway would answer instead (a 4xx, e.g. code `no_digit`), None if accepted.
    """
    from gateway.config import GatewayConfig
    from gateway.errors import GatewayError
    from gateway.preprocess import decode_image, preprocess

    max_pixels = GatewayConfig().max_image_pixels
    images, errors = [], []
    for data in encoded:
        try:
            images.append(preprocess(decode_image(data, max_pixels=max_pixels), mnist.DEFAULT_PREPROCESSING))
        except GatewayError as error:  # what the gateway answers with a 4xx for this image
            errors.append(error)
            continue
        errors.append(None)
    shape = (0, mnist.IMAGE_HEIGHT, mnist.IMAGE_WIDTH)
    return (np.stack(images) if images else np.zeros(shape, np.float32)), errors


def through_gateway(encoded: list[bytes]) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Decode and preprocess uploads exactly as the gateway does with its default preprocessing.

    Returns the model inputs float32 [m, 28, 28], the indices of the uploads they came from, and how many
    uploads the gateway would refuse, by error code (e.g. `no_digit`).
    """
    images, errors = gateway_inputs(encoded)
    kept = [index for index, error in enumerate(errors) if error is None]
    refused = Counter(error.code for error in errors if error is not None)
    return images, np.array(kept, np.int64), dict(refused)


def hard_variant_inputs(
    digits: np.ndarray, labels: np.ndarray, seed: int
) -> dict[str, tuple[np.ndarray, np.ndarray, dict[str, int]]]:
    """Per variant: (gateway-preprocessed images, their labels, refusals by code)."""
    sets = {}
    for name, make in VARIANTS.items():
        rng = np.random.default_rng(seed)  # the same stream per variant, as `make compare` uses
        images, kept, refused = through_gateway([make(digit, rng) for digit in digits])
        sets[name] = (images, labels[kept], refused)
    return sets


def hard_variant_probabilities(
    signature, test_images: np.ndarray, test_labels: np.ndarray, samples: int = HARD_SAMPLES, seed: int = 0
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], dict[str, dict[str, int]]]:
    """The served probabilities and labels per hard variant of `samples` test digits, and refusals by code.

    A fixed sample (`seed`) of the test digits; a variant the gateway refuses entirely has no probabilities.
    Feed the first result to `calibration.calibration_section` (training/train.py can, for the card).
    """
    count = min(samples, len(test_images))
    chosen = np.random.default_rng(seed).choice(len(test_images), size=count, replace=False)
    probabilities, refusals = {}, {}
    for name, (images, labels, refused) in hard_variant_inputs(
        test_images[chosen], test_labels[chosen], seed
    ).items():
        refusals[name] = refused
        if len(images):
            probabilities[name] = (predict(signature, images)[mnist.PROBABILITIES_KEY], labels)
    return probabilities, refusals


def temperature_of(version_dir: Path) -> tuple[float, str | None]:
    """The version's calibration temperature from its model card, and why it is 1 when it is not recorded."""
    card_path = layout.model_card_path(version_dir)
    try:
        card = json.loads(card_path.read_text())
    except FileNotFoundError:
        return 1.0, f"no model card at {card_path}: temperature 1, before == after"
    temperature = calibration.temperature_from_card(card)
    if temperature is None:
        return (
            1.0,
            "the model card has no calibration (an uncalibrated version): temperature 1, before == after",
        )
    return temperature, None


def plot_confusion(confusion: list[list[int]], title: str, path: Path) -> None:
    """Save a confusion-matrix heat map with counts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = np.asarray(confusion)
    fig, ax = plt.subplots(figsize=(7, 6))
    # Log colour scale so the few errors show next to the ~1000-count diagonal.
    image = ax.imshow(np.log1p(matrix), cmap="Blues")
    for (row, col), count in np.ndenumerate(matrix):
        if count:
            colour = "white" if matrix[row, col] > matrix.max() / 3 else "black"
            ax.text(col, row, str(count), ha="center", va="center", fontsize=7, color=colour)
    ax.set(xticks=range(10), yticks=range(10), xlabel="predicted digit", ylabel="true digit", title=title)
    fig.colorbar(image, ax=ax, label="log(1 + count)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def evaluate_version(
    version_dir: Path, test_images: np.ndarray, test_labels: np.ndarray, samples: int, seed: int
) -> tuple[dict, dict]:
    """The evaluation report of one version, and the reliability bins (before, after) per set."""
    temperature, uncalibrated_because = temperature_of(version_dir)  # a bad card fails before TF loads
    signature = load_serving_default(version_dir)
    outputs = predict(signature, test_images)
    report = {"model": mnist.MODEL_NAME, **metrics_from(test_labels, outputs[mnist.DIGIT_KEY])}

    hard, refusals = hard_variant_probabilities(signature, test_images, test_labels, samples, seed)
    probabilities = {MNIST_TEST_SET: (outputs[mnist.PROBABILITIES_KEY], test_labels), **hard}
    refusals[MNIST_TEST_SET] = {}
    section = calibration.calibration_section(probabilities, temperature)
    if uncalibrated_because:
        section["method"] = None
        section["note"] = uncalibrated_because
    for name, summary in section["sets"].items():
        summary["refused"] = refusals[name]
    section["hard_variants"] = {
        "samples": min(samples, len(test_images)),
        "seed": seed,
        "from": "MNIST test digits, encoded by training/hard_variants.py",
        "preprocessing": f"the gateway's decode_image + {mnist.DEFAULT_PREPROCESSING}",
        "accuracy_over": "images the gateway accepts (refused ones are counted under `refused`)",
    }
    report["calibration"] = section
    bins = {
        name: (
            calibration.reliability_bins(calibration.uncalibrated_from(p, temperature), labels),
            calibration.reliability_bins(p, labels),
        )
        for name, (p, labels) in probabilities.items()
    }
    report["reliability_bins"] = {name: {"before": b, "after": a} for name, (b, a) in bins.items()}
    return report, bins


def print_table(section: dict) -> None:
    """ECE and NLL before and after, per set, as a plain-text table."""
    print(
        f"temperature {section['temperature']:.4f}" + (f" ({section['note']})" if section.get("note") else "")
    )
    print(
        f"{'set':12s} {'n':>6s} {'accuracy':>9s} {'ECE before':>11s} {'ECE after':>10s} "
        f"{'NLL before':>11s} {'NLL after':>10s}"
    )
    for name, s in section["sets"].items():
        print(
            f"{name:12s} {s['n']:6d} {s['accuracy']:9.4f} {s['before']['ece']:11.4%} "
            f"{s['after']['ece']:10.4%} {s['before']['nll']:11.4f} {s['after']['nll']:10.4f}"
        )


def main(argv: list[str] | None = None) -> int:
    """CLI: `python -m training.evaluate --version N` writes the reports of models/mnist/<N>."""
    from training.dataset import DEFAULT_DATA_DIR, load_mnist
    from training.idx import IdxFormatError

    parser = argparse.ArgumentParser(description="Evaluate models/mnist/<N> on MNIST test and hard variants.")
    parser.add_argument("--version", type=int, default=None, help="version to evaluate (default: latest)")
    parser.add_argument("--model-dir", type=Path, default=Path("models/mnist"), help="model base path")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="MNIST IDX files")
    parser.add_argument("--reports-dir", type=Path, default=Path("reports"), help="output directory")
    parser.add_argument(
        "--samples",
        type=int,
        default=HARD_SAMPLES,
        help="MNIST test digits per hard variant (a fixed sample)",
    )
    parser.add_argument("--seed", type=int, default=0, help="sampling and variant seed")
    parser.add_argument("--test-limit", type=int, default=None, help="use only the first N MNIST test images")
    args = parser.parse_args(argv)
    if args.samples < 1 or (args.test_limit is not None and args.test_limit < 1):
        parser.error("--samples and --test-limit must be positive")

    versions = layout.list_versions(args.model_dir)
    version = args.version if args.version is not None else max(versions, default=None)
    if version is None or version not in versions:
        print(
            f"evaluate: no version {version} under {args.model_dir} (have {sorted(versions)})",
            file=sys.stderr,
        )
        return 1
    try:
        _, test = load_mnist(args.data_dir)
    except IdxFormatError as exc:
        print(f"evaluate: {exc}", file=sys.stderr)
        return 1
    images, labels = test.images[: args.test_limit], test.labels[: args.test_limit]
    started = time.monotonic()
    try:
        report, bins = evaluate_version(versions[version], images, labels, args.samples, args.seed)
    except ValueError as exc:  # e.g. a model card with an unusable temperature
        print(f"evaluate: version {version}: {exc}", file=sys.stderr)
        return 1
    report = {"model": report.pop("model"), "version": version, **report}
    report["runtime_s"] = round(time.monotonic() - started, 1)

    args.reports_dir.mkdir(parents=True, exist_ok=True)
    json_path = args.reports_dir / f"evaluation_v{version}.json"
    png_path = args.reports_dir / f"confusion_matrix_v{version}.png"
    reliability_path = args.reports_dir / f"reliability_v{version}.png"
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    plot_confusion(
        report["confusion_matrix"],
        f"mnist v{version}: {report['test_accuracy']:.2%} on {report['test_examples']} test digits",
        png_path,
    )
    calibration.plot_reliability_diagram(bins, reliability_path)
    print(f"version {version}: test accuracy {report['test_accuracy']:.4%} ({report['errors']} errors)")
    print(
        "per-class accuracy: " + ", ".join(f"{d}: {a:.2%}" for d, a in report["per_class_accuracy"].items())
    )
    print_table(report["calibration"])
    print(f"wrote {json_path}, {png_path} and {reliability_path} in {report['runtime_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
