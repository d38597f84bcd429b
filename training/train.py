"""`make train`: train the MNIST CNN and export it as the next SavedModel version."""

import argparse
import datetime
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from contract import layout, mnist

DEFAULTS = {
    "epochs": 15,
    "batch_size": 128,
    "learning_rate": 2e-3,
    "dropout": 0.25,
    "dense_units": 256,
    "rotation_deg": 12.0,
    "shift": 0.12,
    "zoom": 0.12,
    "validation_size": 5000,
    "seed": 42,
}


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed Python, NumPy and TensorFlow RNGs; optionally force deterministic TF kernels."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def to_model_input(images: np.ndarray) -> np.ndarray:
    """uint8 [n, 28, 28] -> float32 [n, 28, 28, 1] in [0, 1], as the contract says."""
    return (images.astype(np.float32) / 255.0)[..., None]


def make_dataset(images, labels, batch_size, seed, augmenter=None, shuffle=False):
    """A batched tf.data pipeline, augmented on the fly when an augmenter is given."""
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((to_model_input(images), labels.astype(np.int64)))
    if shuffle:
        dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size)
    if augmenter is not None:
        dataset = dataset.map(
            lambda x, y: (augmenter(x, training=True), y), num_parallel_calls=tf.data.AUTOTUNE
        )
    return dataset.prefetch(tf.data.AUTOTUNE)


def train(train_split, options: argparse.Namespace):
    """Fit the CNN on `train_split`; returns (model, history dict)."""
    import keras

    from training.model import build_augmenter, build_model

    seed_everything(options.seed, options.deterministic)
    images, labels = train_split.images, train_split.labels
    if options.limit:
        images, labels = images[: options.limit], labels[: options.limit]
    validation_size = min(options.validation_size, len(images) // 10)
    fit_images, fit_labels = images[validation_size:], labels[validation_size:]
    augmenter = (
        None
        if options.no_augment
        else build_augmenter(options.rotation_deg, options.shift, options.zoom, options.seed)
    )
    train_data = make_dataset(
        fit_images, fit_labels, options.batch_size, options.seed, augmenter, shuffle=True
    )
    validation_data = None
    if validation_size:
        validation_data = make_dataset(images[:validation_size], labels[:validation_size], 1000, options.seed)

    model = build_model(dropout=options.dropout, dense_units=options.dense_units)
    steps = max(1, -(-len(fit_images) // options.batch_size)) * options.epochs
    schedule = keras.optimizers.schedules.CosineDecay(options.learning_rate, decay_steps=steps, alpha=0.01)
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    history = model.fit(
        train_data,
        validation_data=validation_data,
        epochs=options.epochs,
        shuffle=False,
        verbose=2 if options.quiet else 1,
    )
    return model, history.history


def git_commit() -> str:
    """The current git commit (with `-dirty` for uncommitted changes), or `unknown`."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "training", "contract"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def build_model_card(
    metrics: dict,
    options,
    history: dict,
    training_time_s: float,
    data_dir: Path,
    parameters: int,
    commit: str,
) -> dict:
    """The model card: what the model is, how it was made, and how well it does."""
    import keras
    import tensorflow as tf

    from training.dataset import data_hashes

    hyper = {k: getattr(options, k) for k in DEFAULTS} | {
        "limit": options.limit,
        "augment": not options.no_augment,
        "deterministic": options.deterministic,
    }
    return {
        "model": mnist.MODEL_NAME,
        "signature": {
            "name": mnist.SIGNATURE_NAME,
            "inputs": {mnist.INPUT_KEY: {"dtype": mnist.INPUT_DTYPE, "shape": [None, *mnist.INPUT_SHAPE]}},
            "outputs": {
                mnist.PROBABILITIES_KEY: {"dtype": mnist.PROBABILITIES_DTYPE, "shape": [None, 10]},
                mnist.DIGIT_KEY: {"dtype": mnist.DIGIT_DTYPE, "shape": [None]},
            },
            "input_range": "float32 in [0, 1], white digit on black, 28x28x1",
        },
        **metrics,
        "hyperparameters": hyper,
        "parameters": parameters,
        "history": {k: [round(float(x), 6) for x in v] for k, v in history.items()},
        "training_time_s": round(training_time_s, 1),
        "data": {"source": "MNIST (LeCun et al.), original IDX files", "sha256": data_hashes(data_dir)},
        "git_commit": commit,
        "created_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "environment": {
            "python": platform.python_version(),
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "machine": platform.machine(),
        },
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options, each with help."""
    from training.dataset import DEFAULT_DATA_DIR

    p = argparse.ArgumentParser(
        prog="python -m training.train",
        description="Train the MNIST CNN and export models/mnist/<N+1>.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--epochs", type=int, default=DEFAULTS["epochs"], help="training epochs")
    p.add_argument("--batch-size", type=int, default=DEFAULTS["batch_size"], help="mini-batch size")
    p.add_argument(
        "--learning-rate",
        type=float,
        default=DEFAULTS["learning_rate"],
        help="peak Adam learning rate (cosine decay to 1%% of it)",
    )
    p.add_argument("--dropout", type=float, default=DEFAULTS["dropout"], help="conv-block dropout (head: 2x)")
    p.add_argument("--dense-units", type=int, default=DEFAULTS["dense_units"], help="dense layer width")
    p.add_argument("--rotation-deg", type=float, default=DEFAULTS["rotation_deg"], help="max random rotation")
    p.add_argument(
        "--shift", type=float, default=DEFAULTS["shift"], help="max random shift, fraction of size"
    )
    p.add_argument("--zoom", type=float, default=DEFAULTS["zoom"], help="max random zoom, fraction")
    p.add_argument("--no-augment", action="store_true", help="train without augmentation")
    p.add_argument(
        "--validation-size",
        type=int,
        default=DEFAULTS["validation_size"],
        help="training images held out for validation (the test set is never used to tune)",
    )
    p.add_argument("--limit", type=int, default=0, help="use only the first N training images (smoke runs)")
    p.add_argument("--test-limit", type=int, default=0, help="evaluate on only the first N test images")
    p.add_argument("--seed", type=int, default=DEFAULTS["seed"], help="seed for every RNG")
    p.add_argument("--deterministic", action="store_true", help="deterministic TF kernels (slower)")
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="MNIST IDX files")
    p.add_argument("--model-dir", type=Path, default=Path("models/mnist"), help="TF Serving model base path")
    p.add_argument("--version", type=int, default=None, help="version number (default: highest + 1)")
    p.add_argument("--quiet", action="store_true", help="one line per epoch instead of a progress bar")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Train, export atomically with a model card, and print the result."""
    options = parse_args(argv)
    from training.dataset import load_mnist
    from training.evaluate import metrics_from, predict_saved_model
    from training.export import VersionExistsError, export_model, version_size_bytes
    from training.idx import IdxFormatError
    from training.warmup import write_warmup_requests

    if options.version is not None and (options.model_dir / str(options.version)).exists():
        print(
            f"train: {options.model_dir / str(options.version)} exists; versions are never overwritten",
            file=sys.stderr,
        )
        return 1
    try:
        train_split, test_split = load_mnist(options.data_dir)
    except IdxFormatError as exc:
        print(f"train: {exc}", file=sys.stderr)
        return 1
    commit = git_commit()  # the code that trains, not whatever is checked out when it finishes
    started = time.monotonic()
    model, history = train(train_split, options)
    training_time_s = time.monotonic() - started
    test_images, test_labels = test_split.images, test_split.labels
    if options.test_limit:
        test_images, test_labels = test_images[: options.test_limit], test_labels[: options.test_limit]

    card = {}

    def annotate(staging: Path) -> None:
        # Evaluate the exported SavedModel itself, so the card describes exactly what is served.
        probabilities = predict_saved_model(staging, test_images)
        metrics = metrics_from(test_labels, probabilities.argmax(axis=1))
        card.update(
            build_model_card(
                metrics, options, history, training_time_s, options.data_dir, model.count_params(), commit
            )
        )
        write_warmup_requests(staging)
        card["size_bytes"] = version_size_bytes(staging)
        layout.model_card_path(staging).write_text(json.dumps(card, indent=2) + "\n")

    try:
        target = export_model(model, options.model_dir, annotate=annotate, version=options.version)
    except VersionExistsError as exc:
        print(f"train: {exc}", file=sys.stderr)
        return 1
    print(
        f"exported {target}: test accuracy {card['test_accuracy']:.4%} ({card['errors']} errors of "
        f"{card['test_examples']}), trained in {training_time_s:.0f} s, {card['size_bytes'] / 1e6:.2f} MB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
