"""`make retrain`: fine-tune stable on MNIST mixed with users' corrections; export the next version.

Held-out corrections (contract/feedback.py) are never trained on: they and the MNIST test set measure the
version before and after, and the promotion gate (stack/gate.py) reads that table from the model card.
"""

import argparse
import datetime
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from contract import layout, mnist

DEFAULTS = {
    # Each epoch passes once over the trainable corrections with `replay_ratio` times as many MNIST
    # training images: measured here, corrections alone cost 3.2 points on MNIST, 10:1 cost 0.02.
    "epochs": 3,
    # Few corrections make short epochs; more epochs then, until this many images have passed. Measured
    # here on 400 boxed corrections: 3 epochs (13,200 images) ended at 54 MNIST errors, 14 epochs at 41.
    "min_images": 60_000,
    "replay_ratio": 10,
    "learning_rate": 2e-5,  # training's last learning rate (its cosine decay ends at 1% of 2e-3)
    "batch_size": 128,
    "seed": 42,
}
PROMOTE_CHOICES = ("none", "canary")
DEFAULT_CANARY_PERCENT = 10.0
PROGRESS_EVERY_S = 10.0


class RetrainError(RuntimeError):
    """Retraining cannot start or finish; the message says why."""


def source_version(options) -> int:
    """--from-version, else the version the live `stable` label names."""
    if options.from_version is not None:
        return options.from_version
    from stack.lifecycle import LifecycleError

    try:
        stable = lifecycle().stable_version()
    except (LifecycleError, OSError) as exc:
        raise RetrainError(f"cannot read the live stable label: {exc}") from None
    if stable is None:
        raise RetrainError("no version is labelled stable; name one with --from-version")
    return stable


def read_corrections(database: str):
    """Every stored correction, from the gateway's feedback database."""
    from gateway.errors import StorageUnavailable
    from gateway.feedback.store import FeedbackStore, create_feedback_engine, shown_url

    try:
        store = FeedbackStore(create_feedback_engine(database))
    except ValueError as exc:
        raise RetrainError(str(exc)) from None
    try:
        return store, store.corrections()
    except StorageUnavailable as exc:
        raise RetrainError(
            f"the feedback database {shown_url(database)} cannot be read: {exc.__cause__ or exc}"
        ) from None


def stacked(records) -> tuple[np.ndarray, np.ndarray]:
    """(model inputs [n, 28, 28] float32, labels [n]) of stored corrections."""
    images = np.stack([r.model_input for r in records]) if records else np.zeros((0, 28, 28), np.float32)
    return images.astype(np.float32), np.array([r.label for r in records], dtype=np.int64)


def measure(signature, test, held_out: tuple[np.ndarray, np.ndarray], trust=None) -> dict:
    """MNIST test metrics, held-out corrections read right, and with a judgement MNIST test refused and
    the figures of `trust` (training/trust_figures.py `trust_inputs`) when given."""
    from training.evaluate import metrics_from, predict

    outputs = predict(signature, test.images)
    result = {"mnist": metrics_from(test.labels, outputs[mnist.DIGIT_KEY]), "outputs": outputs}
    images, labels = held_out
    right = predict(signature, images)[mnist.DIGIT_KEY] == labels if len(images) else np.zeros(0, bool)
    result["held_out_right"] = int(right.sum())
    result["held_out_right_by_label"] = {
        str(digit): int(right[labels == digit].sum()) for digit in range(mnist.NUM_CLASSES)
    }
    if mnist.IS_DIGIT_KEY in outputs:
        result["mnist_refused"] = round(float(np.mean(~outputs[mnist.IS_DIGIT_KEY])), 6)
        if trust:
            from training.trust_figures import trust_figures

            result["trust"] = trust_figures(signature, trust)
    return result


def prepared_trust_sets(signature, log):
    """`make trust`'s sets as model inputs (training/trust_figures.py) if the version judges "not a digit"."""
    if mnist.IS_DIGIT_KEY not in signature.structured_outputs:
        return None
    from training.trust_figures import SAMPLES_PER_SET, trust_inputs

    started = time.monotonic()
    try:
        prepared = trust_inputs()
    except FileNotFoundError as exc:  # make trust's fonts or photos are not installed: no trust rows
        log(f"trust sets left out of the card: {exc}")
        return None
    log(
        f"trust sets: {len(prepared)} sets of {SAMPLES_PER_SET} uploads made and preprocessed "
        f"in {time.monotonic() - started:.0f} s"
    )
    return prepared


def feedback_section(trained, held_out, database: str) -> dict:
    """What the card records of the corrections: how many, which ids, per label, held out (the database's
    URL without its password)."""
    from gateway.feedback.store import shown_url

    def summary(records) -> dict:
        ids = [r.id for r in records]
        labels = np.array([r.label for r in records], dtype=np.int64)
        return {
            "count": len(records),
            "ids": [min(ids), max(ids)] if ids else None,
            "per_label": {str(d): int((labels == d).sum()) for d in range(mnist.NUM_CLASSES)},
        }

    return {
        "database": shown_url(database),
        "trained_on": summary(trained),
        "held_out": summary(held_out),
    }


def before_after(before: dict, after: dict, source: int, held_out_n: int) -> dict:
    """The card's before/after table: MNIST test errors and per-class accuracy, held-out corrections, and
    with a judgement the MNIST test and trust sets' shares refused."""
    rows = {
        "mnist_test_errors": [before["mnist"]["errors"], after["mnist"]["errors"]],
        **{
            f"mnist_class_{d}_accuracy": [
                before["mnist"]["per_class_accuracy"][str(d)],
                after["mnist"]["per_class_accuracy"][str(d)],
            ]
            for d in range(mnist.NUM_CLASSES)
        },
        "held_out_corrections_right": [before["held_out_right"], after["held_out_right"]],
    }
    if "mnist_refused" in before:
        rows["mnist_test_refused_as_not_a_digit"] = [before["mnist_refused"], after["mnist_refused"]]
    table = {"columns": [f"version {source}", "retrained"], "held_out_corrections": held_out_n, "rows": rows}
    if "trust" in before:
        from training.trust_figures import table_rows

        rows.update(table_rows(before["trust"], after["trust"]))
        table["trust_uploads"] = {name: figures["n"] for name, figures in before["trust"].items()}
    return table


def table_lines(table: dict, version: int) -> list[str]:
    """The before/after table as Markdown."""
    columns = [table["columns"][0], f"version {version}"]
    lines = [f"| measure | {columns[0]} | {columns[1]} |", "| --- | --- | --- |"]
    for name, (was, now) in table["rows"].items():
        if name.startswith("held_out"):
            n = table["held_out_corrections"]
            was, now = f"{was}/{n}", f"{now}/{n}"
        elif isinstance(was, float):
            was, now = f"{was:.2%}", f"{now:.2%}"
        lines.append(f"| {name.replace('_', ' ')} | {was} | {now} |")
    return lines


def retrained_card(source_card: dict, source: int, after: dict, section: dict, options, seconds) -> dict:
    """The source's card with the retrained version's measurements and how it was retrained."""
    from training.train import git_commit

    card = dict(source_card)
    card.update({key: value for key, value in after["mnist"].items()})
    if "mnist_refused" in after and isinstance(card.get("digit_judgement"), dict):
        card["digit_judgement"] = dict(card["digit_judgement"])
        card["digit_judgement"]["mnist_test_false_reject_rate"] = after["mnist_refused"]
        card["digit_judgement"]["threshold_from_version"] = source
    card["retrained"] = {
        "from_version": source,
        "how": "fine-tuned through the version's own SavedModel signature (training/finetune.py): batch "
        "normalisation frozen, dropout off, no augmentation, the ten classes only",
        "options": {key: getattr(options, key) for key in DEFAULTS},
        "time_s": round(seconds, 1),
        **section,
    }
    card["git_commit"] = git_commit()
    card["created_utc"] = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    return card


def fine_tune(tuner, corrections, replay, options, log) -> dict:
    """Run the replay batches through the tuner, logging progress every PROGRESS_EVERY_S; what ran."""
    from training.finetune import batches_per_epoch, replay_batches

    images, labels = corrections
    per_epoch = batches_per_epoch(len(images), len(replay.images), options.replay_ratio, options.batch_size)
    replayed = min(len(replay.images), options.replay_ratio * len(images))
    epochs = max(options.epochs, -(-options.min_images // (len(images) + replayed)))
    total = per_epoch * epochs
    log(
        f"fine-tuning: {len(images)} corrections + {replayed} MNIST images an epoch, "
        f"{epochs} epochs, {total} steps"
    )
    started = last = time.monotonic()
    losses: list[float] = []
    batches = replay_batches(
        images,
        labels,
        replay.images,
        replay.labels,
        ratio=options.replay_ratio,
        batch_size=options.batch_size,
        epochs=epochs,
        seed=options.seed,
    )
    for done, (x, y) in enumerate(batches, start=1):
        losses.append(tuner.step(x, y))
        now = time.monotonic()
        if now - last >= PROGRESS_EVERY_S or done == total:
            last = now
            log(
                f"  step {done}/{total} (epoch {-(-done // per_epoch)}/{epochs}): "
                f"loss {np.mean(losses[-per_epoch:]):.4f}, {now - started:.0f} s"
            )
    return {"epochs": epochs, "steps": total, "images": total and epochs * (len(images) + replayed)}


def export(tuner, source_dir: Path, options, make_card) -> tuple[Path, dict]:
    """Save, convert, warm and card the fine-tuned model in a staging directory, then publish it."""
    from training.evaluate import load_serving_default
    from training.export import new_staging_dir, publish, version_size_bytes, write_tflite

    staging = new_staging_dir(options.model_dir)
    try:
        tuner.save(staging)
        write_tflite(staging)
        # The source's warm-up records name exactly the signatures this copy has.
        shutil.copytree(source_dir / layout.ASSETS_EXTRA_DIR, staging / layout.ASSETS_EXTRA_DIR)
        card = make_card(load_serving_default(staging), staging)
        card["size_bytes"] = version_size_bytes(staging)
        layout.model_card_path(staging).write_text(json.dumps(card, indent=2) + "\n")
        return publish(staging, options.model_dir, options.version), card
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def lifecycle():
    """The stack's lifecycle on the live state, its model servers and PROMOTE_* rules, as for make promote."""
    from stack.lifecycle import Lifecycle, Settings

    return Lifecycle(Settings.from_env())


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options, each with help."""
    from training.dataset import DEFAULT_DATA_DIR

    p = argparse.ArgumentParser(
        prog="python -m training.retrain",
        description="Fine-tune the stable version on MNIST mixed with stored corrections; export the next.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--from-version", type=int, default=None, help="version to start from (default: stable)")
    p.add_argument("--epochs", type=int, default=DEFAULTS["epochs"], help="passes over the corrections")
    p.add_argument(
        "--min-images",
        type=int,
        default=DEFAULTS["min_images"],
        help="more epochs than --epochs until at least this many images (corrections + MNIST) have passed",
    )
    p.add_argument(
        "--replay-ratio", type=int, default=DEFAULTS["replay_ratio"], help="MNIST images per correction"
    )
    p.add_argument(
        "--learning-rate", type=float, default=DEFAULTS["learning_rate"], help="Adam learning rate"
    )
    p.add_argument("--batch-size", type=int, default=DEFAULTS["batch_size"], help="mini-batch size")
    p.add_argument(
        "--seed", type=int, default=DEFAULTS["seed"], help="seed for the replay draw and shuffling"
    )
    p.add_argument(
        "--database",
        default=None,
        help="feedback database URL (default: the gateway's: FEEDBACK_DATABASE_URL or its SQLite file)",
    )
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="MNIST IDX files")
    p.add_argument("--model-dir", type=Path, default=Path("models/mnist"), help="TF Serving model base path")
    p.add_argument("--version", type=int, default=None, help="version number (default: highest + 1)")
    p.add_argument(
        "--promote",
        choices=PROMOTE_CHOICES,
        default="none",
        help="canary: if the gate passes, send --canary-percent of traffic to the new version",
    )
    p.add_argument(
        "--canary-percent",
        type=float,
        default=DEFAULT_CANARY_PERCENT,
        help="canary share with --promote canary",
    )
    options = p.parse_args(argv)
    if min(options.epochs, options.batch_size) < 1 or min(options.replay_ratio, options.min_images) < 0:
        p.error("--epochs and --batch-size must be >= 1, --replay-ratio and --min-images >= 0")
    if options.learning_rate <= 0:
        p.error("--learning-rate must be > 0")
    if options.database is None:
        from gateway.config import GatewayConfig

        options.database = GatewayConfig.from_env().feedback_database
    return options


def main(argv: list[str] | None = None) -> int:
    """Read corrections, fine-tune, export with a before/after card, record what was trained, gate, canary."""
    options = parse_args(argv)
    try:
        return retrain(options)
    except RetrainError as exc:
        print(f"retrain: {exc}", file=sys.stderr)
        return 1


def retrain(options) -> int:
    """The whole run (RetrainError when it cannot go on); the process exit code."""
    from training.dataset import load_mnist
    from training.finetune import FineTuner
    from training.idx import IdxFormatError
    from training.train import calibration_card

    def log(message: str) -> None:
        print(message, flush=True)

    started = time.monotonic()
    source = source_version(options)
    source_dir = options.model_dir / str(source)
    if not (source_dir / layout.SAVED_MODEL_FILE).is_file():
        raise RetrainError(f"version {source} has no SavedModel at {source_dir}")
    if options.version is not None and (options.model_dir / str(options.version)).exists():
        raise RetrainError(
            f"{options.model_dir / str(options.version)} exists; versions are never overwritten"
        )
    source_card = json.loads(layout.model_card_path(source_dir).read_text())
    store, records = read_corrections(options.database)
    trained = [r for r in records if not r.held_out]
    held_out = [r for r in records if r.held_out]
    if not trained:
        raise RetrainError(
            f"no corrections to train on: {len(records)} stored, {len(held_out)} of them held out "
            f"(send some with POST /v1/feedback or the UI's 'Wrong? It is a ...' buttons)"
        )
    try:
        train_split, test_split = load_mnist(options.data_dir)
    except (IdxFormatError, OSError) as exc:
        raise RetrainError(f"MNIST: {exc}") from None
    log(
        f"retraining version {source}: {len(trained)} corrections to train on (ids {trained[0].id}-"
        f"{trained[-1].id}), {len(held_out)} held out"
    )
    tuner = FineTuner(source_dir, options.learning_rate)
    held_out_set = stacked(held_out)
    source_signature = tuner.loaded.signatures[mnist.SIGNATURE_NAME]
    trust = prepared_trust_sets(source_signature, log)  # once: both versions predict the same inputs
    before = measure(source_signature, test_split, held_out_set, trust)
    log(
        f"version {source}: {before['mnist']['errors']} MNIST test errors, "
        f"held-out corrections {before['held_out_right']}/{len(held_out)} right"
    )
    ran = fine_tune(tuner, stacked(trained), train_split, options, log)
    section = feedback_section(trained, held_out, options.database) | {"ran": ran}
    temperature = source_card.get("calibration", {}).get("temperature")

    def make_card(signature, staging: Path) -> dict:
        after = measure(signature, test_split, held_out_set, trust)
        section["before_after"] = before_after(before, after, source, len(held_out))
        # What the promotion gate reads: the held-out corrections must be read right more often than before.
        section["held_out_corrections"] = {
            "n": len(held_out),
            "right_before": before["held_out_right"],
            "right_after": after["held_out_right"],
            "right_by_label_before": before["held_out_right_by_label"],
            "right_by_label_after": after["held_out_right_by_label"],
        }
        card = retrained_card(source_card, source, after, section, options, time.monotonic() - started)
        if temperature is not None:
            outputs = after["outputs"]
            card["calibration"] = calibration_card(
                temperature, staging, outputs, test_split.images, test_split.labels
            )
            card["calibration"]["fitted_on"] = f"inherited from version {source} (retraining keeps it)"
        return card

    target, card = export(tuner, source_dir, options, make_card)
    version = int(target.name)
    store.record_training(version, [r.id for r in trained])
    log(f"exported {target} in {time.monotonic() - started:.0f} s (retrained from version {source}):")
    for line in table_lines(card["retrained"]["before_after"], version):
        log(line)
    from stack.lifecycle import LifecycleError

    try:
        verdict = lifecycle().gate_verdict(version)
    except LifecycleError as refused:
        log(f"promotion gate: refused: {refused}")
        if options.promote == "canary":
            print(f"retrain: version {version} is not canaried: the gate refused it", file=sys.stderr)
            return 3
        return 0
    log(f"promotion gate: passes: {verdict}")
    if options.promote == "canary":
        try:
            lifecycle().canary(version, options.canary_percent)
        except LifecycleError as exc:
            raise RetrainError(f"canary of version {version} failed: {exc}") from None
    return 0


if __name__ == "__main__":
    sys.exit(main())
