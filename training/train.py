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
    "epochs": 14,
    "batch_size": 128,
    "learning_rate": 2e-3,
    "dropout": 0.25,
    "dense_units": 256,
    "detector_units": 128,
    # The detector's gradient reaches the shared conv layers scaled by this: enough to shape features for
    # "is it a digit", not so much that it pulls them away from telling digits apart.
    "detector_gradient": 0.5,
    # One detector per class, each trained against the other nine classes and the non-digits: "is this a
    # good 4" is a tighter question than "is this any digit", and MNIST's own digits become its negatives.
    "class_detectors": True,
    "rotation_deg": 12.0,
    "shift": 0.12,
    "zoom": 0.12,
    "validation_size": 5000,
    "seed": 42,
    "outliers": 26000,
    "rendered_digits": 5000,
    "transformed_digits": 8000,
    "tuning_digits": 3000,
    "precision": "mixed_bfloat16",
}

PRECISIONS = ("mixed_bfloat16", "float32")  # the Keras dtype policies training may compute in

# Each mini-batch of MNIST digits comes with this share of synthetic images (training/synthetic.py):
# non-digits (detector target 0) and digits drawn and printed as the gateway sees them (target 1; without
# them the detector learns "MNIST's rendering" and calls printed digits non-digits). Neither trains the ten
# classes: MNIST alone does, so the classes stay what MNIST test measures.
OUTLIER_BATCH_SHARE = 0.3
# How many digits of each kind the "not a digit" threshold may refuse. Half the targets the held-out sets are
# checked against (`make trust`: 0.3% MNIST test, 1% drawn, 2% printed), so the tuned threshold has room.
FALSE_REJECT_BUDGET = {"mnist_validation": 0.0015, "drawn": 0.005, "printed": 0.01}


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


def make_dataset(
    images, labels, batch_size, seed, augmenter=None, shuffle=False, outliers=None, rendered=None
):
    """Batched (image, target) tf.data pipeline, augmented on the fly when an augmenter is given.

    A target is [11]: the digit's one-hot class and 1 ("a digit"). With `outliers` (float32 [m, 28, 28]
    in [0, 1]) every batch also carries OUTLIER_BATCH_SHARE of them and of `rendered` digits, drawn with
    repetition: target all 0 for an outlier, no class and 1 for a rendered digit.
    """
    import tensorflow as tf

    targets = np.eye(mnist.NUM_CLASSES + 1, dtype=np.float32)[labels.astype(np.int64)]
    targets[:, mnist.NUM_CLASSES] = 1.0
    dataset = tf.data.Dataset.from_tensor_slices((to_model_input(images), targets))
    if shuffle:
        dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size)
    if outliers is not None and len(outliers):
        rendered = np.zeros((0, *outliers.shape[1:]), np.float32) if rendered is None else rendered
        extra = np.concatenate([outliers, rendered])[..., None].astype(np.float32)
        extra_targets = np.zeros((len(extra), mnist.NUM_CLASSES + 1), np.float32)
        extra_targets[len(outliers) :, mnist.NUM_CLASSES] = 1.0
        extras = tf.data.Dataset.from_tensor_slices((extra, extra_targets))
        extras = extras.shuffle(len(extra), seed=seed + 1).repeat()
        extras = extras.batch(max(1, round(batch_size * OUTLIER_BATCH_SHARE)))
        dataset = tf.data.Dataset.zip(dataset, extras).map(
            lambda a, b: (tf.concat([a[0], b[0]], axis=0), tf.concat([a[1], b[1]], axis=0))
        )
    if augmenter is not None:
        dataset = dataset.map(
            lambda x, y: (augmenter(x, training=True), y), num_parallel_calls=tf.data.AUTOTUNE
        )
    return dataset.prefetch(tf.data.AUTOTUNE)


def joint_loss(targets, outputs):
    """Cross-entropy of the ten classes where a class is given, plus the detector's binary cross-entropy."""
    from keras import ops

    is_digit = targets[:, mnist.NUM_CLASSES]
    has_class = ops.sum(targets[:, : mnist.NUM_CLASSES], axis=-1)  # 0 for non-digits and rendered digits
    classes = ops.categorical_crossentropy(
        targets[:, : mnist.NUM_CLASSES], outputs[:, : mnist.NUM_CLASSES], from_logits=True
    )
    detectors = outputs[:, mnist.NUM_CLASSES :]
    detector = ops.binary_crossentropy(is_digit, ops.max(detectors, axis=-1), from_logits=True)
    if detectors.shape[-1] == 1:
        return has_class * classes + detector
    # One detector per class: "is this a good c", with every other class and every non-digit against it.
    per_class = ops.mean(
        ops.binary_crossentropy(targets[:, : mnist.NUM_CLASSES], detectors, from_logits=True), axis=-1
    )
    return has_class * classes + detector + (has_class + 1.0 - is_digit) * per_class


def digit_accuracy():
    """Accuracy of the ten classes on the MNIST digits of a batch (other images have no class)."""
    import keras
    from keras import ops

    class DigitAccuracy(keras.metrics.Mean):
        def update_state(self, y_true, y_pred, sample_weight=None):
            classes = slice(0, mnist.NUM_CLASSES)
            right = ops.argmax(y_true[:, classes], axis=-1) == ops.argmax(y_pred[:, classes], axis=-1)
            has_class = ops.sum(y_true[:, classes], axis=-1)
            return super().update_state(ops.cast(right, "float32"), sample_weight=has_class)

    return DigitAccuracy(name="accuracy")


def train(train_split, options: argparse.Namespace, outliers=None, rendered=None):
    """Fit the CNN on `train_split` (+ non-digits, rendered digits); returns (model, history, validation)."""
    import keras

    from training.dataset import Split
    from training.model import build_augmenter

    seed_everything(options.seed, options.deterministic)
    images, labels = train_split.images, train_split.labels
    if options.limit:
        images, labels = images[: options.limit], labels[: options.limit]
    validation_size = min(options.validation_size, len(images) // 10)
    fit = Split(images[validation_size:], labels[validation_size:])
    validation = Split(images[:validation_size], labels[:validation_size])
    if outliers is not None and len(outliers) and options.transformed_digits:
        from training.transformed import transformed_non_digits

        # From the fitted digits only: the validation split tunes the threshold and must stay unseen.
        hard = transformed_non_digits(fit.images, fit.labels, options.transformed_digits, options.seed)
        outliers = np.concatenate([outliers, hard])
    augmenter = (
        None
        if options.no_augment
        else build_augmenter(options.rotation_deg, options.shift, options.zoom, options.seed)
    )
    train_data = make_dataset(
        fit.images,
        fit.labels,
        options.batch_size,
        options.seed,
        augmenter,
        shuffle=True,
        outliers=outliers,
        rendered=rendered,
    )
    validation_data = None
    if validation_size:
        validation_data = make_dataset(validation.images, validation.labels, 1000, options.seed)

    keras.mixed_precision.set_global_policy(options.precision)
    model = model_for(options)
    steps = max(1, -(-len(fit.images) // options.batch_size)) * options.epochs
    schedule = keras.optimizers.schedules.CosineDecay(options.learning_rate, decay_steps=steps, alpha=0.01)
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss=joint_loss,
        metrics=[digit_accuracy()],
    )
    history = model.fit(
        train_data,
        validation_data=validation_data,
        epochs=options.epochs,
        shuffle=False,
        verbose=2 if options.quiet else 1,
    )
    return float32_copy(model, options), history.history, validation


def model_for(options, fused_batch_norm: bool = True):
    """A new, untrained CNN of the options' shape (`fused_batch_norm`: see build_model)."""
    from training.model import build_model

    return build_model(
        options.dropout,
        options.dense_units,
        options.detector_units,
        options.detector_gradient,
        options.class_detectors,
        fused_batch_norm,
    )


def float32_copy(model, options):
    """The trained weights in a float32 model: what is exported and served, whatever trained it."""
    import keras

    keras.mixed_precision.set_global_policy("float32")
    if model.compute_dtype == "float32":
        return model
    copy = model_for(options)
    copy.set_weights(model.get_weights())
    return copy


def predict_logits(model, images: np.ndarray, batch: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """(digit logits [n, 10], detector logits [n]) of uint8 or [0, 1] float images [n, 28, 28]."""
    from training.model import split_outputs

    inputs = to_model_input(images) if images.dtype == np.uint8 else images[..., None].astype(np.float32)
    outputs = np.concatenate(
        [np.asarray(model(inputs[i : i + batch], training=False)) for i in range(0, len(inputs), batch)]
    )
    logits, detector = split_outputs(outputs)
    return np.asarray(logits), np.asarray(detector)


def calibrate_and_judge(model, validation, tuning: dict, outliers):
    """Temperature from the validation split, and the detector threshold tuned on digits.

    Returns (temperature, judge, card section). `tuning` maps a digit-set name to float images [n, 28, 28].
    """
    from training.calibration import fit_temperature
    from training.judgement import rejected_share, tune_threshold
    from training.model import has_class_detectors

    validation_logits, validation_detector = predict_logits(model, validation.images)
    temperature = fit_temperature(validation_logits, validation.labels) if len(validation.images) else 1.0
    if outliers is None or not len(outliers):
        # A detector that never saw a non-digit would call everything a digit: export no judgement at all.
        return temperature, None, {"exported": False, "why": "trained without non-digits (--outliers 0)"}

    def detector_logits(images):
        return predict_logits(model, images)[1] if len(images) else np.zeros(0)

    digit_sets = {"mnist_validation": validation_detector}
    digit_sets |= {name: detector_logits(images) for name, images in tuning.items()}
    judge = tune_threshold({name: (d, FALSE_REJECT_BUDGET[name]) for name, d in digit_sets.items() if len(d)})
    outlier_logits = detector_logits(outliers)
    sigmoids = (
        "a sigmoid per class, each trained against the other classes too; the best one scores the image"
        if has_class_detectors(model)
        else "a sigmoid"
    )
    section = {
        "score": f"the CNN's detector head (its own dense layer on the shared conv features, {sigmoids}, "
        "trained on MNIST and rendered digits against synthetic non-digits, among them fragments of "
        "Chinese characters written with a pen, and transformed MNIST digits: training/synthetic.py, "
        "training/hanzi.py, training/transformed.py)",
        "digit_score": "sigmoid(detector_logit - threshold): 0.5 at the threshold, higher = more digit-like",
        "is_digit": f"digit_score >= {mnist.DIGIT_SCORE_CUT}",
        "threshold_logit": round(judge.threshold, 6),
        "tuned_on": {
            name: {
                "n": len(d),
                "false_reject_budget": FALSE_REJECT_BUDGET[name],
                "false_reject_rate": round(rejected_share(d, judge.threshold), 6),
            }
            for name, d in digit_sets.items()
        },
        "training_outliers_rejected": {
            "n": len(outlier_logits),
            "rate": round(rejected_share(outlier_logits, judge.threshold), 6),
            "note": "the synthetic non-digits trained on; `make trust` measures held-out ones",
        },
    }
    return temperature, judge, section


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
                mnist.DIGIT_SCORE_KEY: {"dtype": mnist.DIGIT_SCORE_DTYPE, "shape": [None]},
                mnist.IS_DIGIT_KEY: {"dtype": mnist.IS_DIGIT_DTYPE, "shape": [None]},
            },
            "input_range": "float32 in [0, 1], white digit on black, 28x28x1",
        },
        "signatures": {
            mnist.EXPLAIN_SIGNATURE_NAME: {
                "inputs": {
                    mnist.INPUT_KEY: {"dtype": mnist.INPUT_DTYPE, "shape": [None, *mnist.INPUT_SHAPE]}
                },
                "outputs": {
                    mnist.ATTRIBUTION_KEY: {"dtype": mnist.ATTRIBUTION_DTYPE, "shape": [None, 28, 28]},
                    mnist.DIGIT_KEY: {"dtype": mnist.DIGIT_DTYPE, "shape": [None]},
                },
            }
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


def count(text: str) -> int:
    """An argparse type: a whole number >= 0 (a negative count is an error message, not a traceback)."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


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
    p.add_argument(
        "--dense-units", type=int, default=DEFAULTS["dense_units"], help="digit head's dense width"
    )
    p.add_argument(
        "--detector-units", type=int, default=DEFAULTS["detector_units"], help="detector head's dense width"
    )
    p.add_argument(
        "--detector-gradient",
        type=float,
        default=DEFAULTS["detector_gradient"],
        help="scale of the detector's gradient into the shared conv layers (0: they learn digits only)",
    )
    p.add_argument(
        "--class-detectors",
        action=argparse.BooleanOptionalAction,
        default=DEFAULTS["class_detectors"],
        help="one detector logit per class (is this a good c?), the digit score from the best of them; "
        "--no-class-detectors: one detector for any digit, as versions 2 and 3 were trained",
    )
    p.add_argument("--rotation-deg", type=float, default=DEFAULTS["rotation_deg"], help="max random rotation")
    p.add_argument(
        "--shift", type=float, default=DEFAULTS["shift"], help="max random shift, fraction of size"
    )
    p.add_argument("--zoom", type=float, default=DEFAULTS["zoom"], help="max random zoom, fraction")
    p.add_argument("--no-augment", action="store_true", help="train without augmentation")
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=DEFAULTS["precision"],
        help="compute precision of training (bfloat16 is ~2x faster on CPUs with AMX/AVX512-BF16; "
        "float32 elsewhere); the exported model is float32 either way",
    )
    p.add_argument(
        "--validation-size",
        type=int,
        default=DEFAULTS["validation_size"],
        help="training images held out for validation (the test set is never used to tune)",
    )
    p.add_argument(
        "--outliers",
        type=count,
        default=DEFAULTS["outliers"],
        help="synthetic non-digits the detector head trains against (0: none)",
    )
    p.add_argument(
        "--rendered-digits",
        type=count,
        default=DEFAULTS["rendered_digits"],
        help="synthetic drawn and printed digits (half each) the detector trains on as digits",
    )
    p.add_argument(
        "--transformed-digits",
        type=count,
        default=DEFAULTS["transformed_digits"],
        help="MNIST training digits mirrored, flipped or turned into non-digits (training/transformed.py), "
        "trained against with the synthetic non-digits",
    )
    p.add_argument(
        "--tuning-digits",
        type=count,
        default=DEFAULTS["tuning_digits"],
        help="synthetic drawn and printed digits each, for tuning the not-a-digit threshold (0: MNIST only)",
    )
    p.add_argument("--limit", type=count, default=0, help="use only the first N training images (smoke runs)")
    p.add_argument("--test-limit", type=count, default=0, help="evaluate on only the first N test images")
    p.add_argument("--seed", type=int, default=DEFAULTS["seed"], help="seed for every RNG")
    p.add_argument("--deterministic", action="store_true", help="deterministic TF kernels (slower)")
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="MNIST IDX files")
    p.add_argument("--model-dir", type=Path, default=Path("models/mnist"), help="TF Serving model base path")
    p.add_argument("--version", type=int, default=None, help="version number (default: highest + 1)")
    p.add_argument("--quiet", action="store_true", help="one line per epoch instead of a progress bar")
    return p.parse_args(argv)


def synthetic_sets(options) -> tuple[np.ndarray | None, np.ndarray | None, dict[str, np.ndarray]]:
    """(non-digits, rendered digits) for the detector, and drawn/printed digits for threshold tuning.

    Made by a process per core (the same images as one process makes: every kind has its own stream). The
    rendered digits are drawn and printed ones from another seed than the tuning digits.
    """
    if not options.outliers and not options.tuning_digits:
        return None, None, {}
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor

    from training import synthetic

    started = time.monotonic()
    # spawn, not fork: a forked child of a process that may hold TensorFlow's threads can deadlock.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1, mp_context=context) as pool:
        makers = {"drawn": synthetic.drawn_digits, "printed": synthetic.printed_digits}
        tuning_jobs = {
            kind: pool.submit(make, options.tuning_digits, options.seed)
            for kind, make in makers.items()
            if options.tuning_digits
        }
        rendered_jobs = [
            pool.submit(make, options.rendered_digits // 2, options.seed + 1)
            for make in makers.values()
            if options.outliers and options.rendered_digits
        ]
        outliers = synthetic.non_digits(options.outliers, options.seed, pool) if options.outliers else None
        tuning = {kind: job.result()[0] for kind, job in tuning_jobs.items()}
        rendered = np.concatenate([job.result()[0] for job in rendered_jobs]) if rendered_jobs else None
    print(
        f"synthetic data: {options.outliers} non-digits, {0 if rendered is None else len(rendered)} rendered "
        f"digits, {2 * options.tuning_digits} tuning digits in {time.monotonic() - started:.0f} s",
        flush=True,
    )
    return outliers, rendered, tuning


def main(argv: list[str] | None = None) -> int:
    """Train, calibrate, fit the digit judgement, export atomically with a model card, print the result."""
    options = parse_args(argv)
    from training.dataset import load_mnist
    from training.evaluate import load_serving_default, metrics_from, predict
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
    outliers, rendered, tuning = synthetic_sets(options)
    model, history, validation = train(train_split, options, outliers, rendered)
    temperature, judge, judgement = calibrate_and_judge(model, validation, tuning, outliers)
    training_time_s = time.monotonic() - started
    test_images, test_labels = test_split.images, test_split.labels
    if options.test_limit:
        test_images, test_labels = test_images[: options.test_limit], test_labels[: options.test_limit]

    card = {}

    def annotate(staging: Path) -> None:
        # Evaluate the exported SavedModel itself, so the card describes exactly what is served.
        outputs = predict(load_serving_default(staging), test_images)
        metrics = metrics_from(test_labels, outputs[mnist.DIGIT_KEY])
        if judge is not None:
            refused = float(np.mean(~outputs[mnist.IS_DIGIT_KEY]))
            judgement["mnist_test_false_reject_rate"] = round(refused, 6)
        card.update(
            build_model_card(
                metrics, options, history, training_time_s, options.data_dir, model.count_params(), commit
            )
        )
        if judge is None:
            for key in (mnist.DIGIT_SCORE_KEY, mnist.IS_DIGIT_KEY):
                del card["signature"]["outputs"][key]
        card["digit_judgement"] = judgement
        card["calibration"] = calibration_card(temperature, staging, outputs, test_images, test_labels)
        card["explain"] = {
            "signature": mnist.EXPLAIN_SIGNATURE_NAME,
            "method": mnist.EXPLAIN_METHOD,
            "baseline": mnist.EXPLAIN_BASELINE,
            "steps": mnist.EXPLAIN_STEPS,
            "target": "the predicted digit's logit",
        }
        write_warmup_requests(staging)
        card["size_bytes"] = version_size_bytes(staging)
        layout.model_card_path(staging).write_text(json.dumps(card, indent=2) + "\n")

    try:
        target = export_model(
            model,
            options.model_dir,
            annotate=annotate,
            version=options.version,
            judge=judge,
            temperature=temperature,
        )
    except VersionExistsError as exc:
        print(f"train: {exc}", file=sys.stderr)
        return 1
    total_s = time.monotonic() - started
    judged = (
        f"MNIST test falsely refused {judgement['mnist_test_false_reject_rate']:.2%}, training outliers "
        f"refused {judgement['training_outliers_rejected']['rate']:.1%}"
        if judge is not None
        else "no digit judgement (trained without non-digits)"
    )
    print(
        f"exported {target}: test accuracy {card['test_accuracy']:.4%} ({card['errors']} errors of "
        f"{card['test_examples']}), temperature {temperature:.3f}, {judged}; {training_time_s:.0f} s to "
        f"train, {total_s:.0f} s in all, {card['size_bytes'] / 1e6:.2f} MB"
    )
    return 0


def calibration_card(temperature: float, version_dir: Path, outputs: dict, images, labels) -> dict:
    """The card's calibration section: ECE/NLL before and after T, on MNIST test and the hard variants."""
    from training.calibration import calibration_section
    from training.evaluate import MNIST_TEST_SET, hard_variant_probabilities, load_serving_default

    hard, refusals = hard_variant_probabilities(load_serving_default(version_dir), images, labels)
    section = calibration_section(
        {MNIST_TEST_SET: (outputs[mnist.PROBABILITIES_KEY], labels), **hard},
        temperature,
        fitted_on="the validation split (training images held out of fitting)",
    )
    for name, refused in refusals.items():
        if name in section["sets"]:
            section["sets"][name]["refused"] = refused
    return section


if __name__ == "__main__":
    sys.exit(main())
