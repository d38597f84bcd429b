"""Evaluate an exported SavedModel on MNIST test data; write accuracy reports and plots."""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from contract import layout, mnist

EVAL_BATCH = 1000


def predict_saved_model(model_path: Path, images: np.ndarray) -> np.ndarray:
    """Run the `serving_default` signature over uint8 [n, 28, 28] images; returns probabilities."""
    import tensorflow as tf

    signature = tf.saved_model.load(str(model_path)).signatures[mnist.SIGNATURE_NAME]
    batches = []
    for start in range(0, len(images), EVAL_BATCH):
        batch = images[start : start + EVAL_BATCH].astype(np.float32)[..., None] / 255.0
        batches.append(signature(**{mnist.INPUT_KEY: tf.constant(batch)})[mnist.PROBABILITIES_KEY].numpy())
    return np.concatenate(batches)


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


def main(argv: list[str] | None = None) -> int:
    """CLI: `python -m training.evaluate --version N` writes reports/evaluation_vN.{json,png}."""
    from training.dataset import DEFAULT_DATA_DIR, load_mnist

    parser = argparse.ArgumentParser(description="Evaluate models/mnist/<N> on the MNIST test set.")
    parser.add_argument("--version", type=int, default=None, help="version to evaluate (default: latest)")
    parser.add_argument("--model-dir", type=Path, default=Path("models/mnist"), help="model base path")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="MNIST IDX files")
    parser.add_argument("--reports-dir", type=Path, default=Path("reports"), help="output directory")
    args = parser.parse_args(argv)

    versions = layout.list_versions(args.model_dir)
    version = args.version if args.version is not None else max(versions, default=None)
    if version is None or version not in versions:
        print(
            f"evaluate: no version {version} under {args.model_dir} (have {sorted(versions)})",
            file=sys.stderr,
        )
        return 1
    _, test = load_mnist(args.data_dir)
    probabilities = predict_saved_model(versions[version], test.images)
    report = {
        "model": mnist.MODEL_NAME,
        "version": version,
        **metrics_from(test.labels, probabilities.argmax(axis=1)),
    }
    args.reports_dir.mkdir(parents=True, exist_ok=True)
    json_path = args.reports_dir / f"evaluation_v{version}.json"
    png_path = args.reports_dir / f"confusion_matrix_v{version}.png"
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    plot_confusion(
        report["confusion_matrix"],
        f"mnist v{version}: {report['test_accuracy']:.2%} on {report['test_examples']} test digits",
        png_path,
    )
    print(f"version {version}: test accuracy {report['test_accuracy']:.4%} ({report['errors']} errors)")
    print(
        "per-class accuracy: " + ", ".join(f"{d}: {a:.2%}" for d, a in report["per_class_accuracy"].items())
    )
    print(f"wrote {json_path} and {png_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
