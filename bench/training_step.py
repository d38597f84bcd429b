"""make bench: the CNN's train step with the fused batch norm against Keras' own, in one run.

Builds today's CNN twice, one with training/model.py's FusedBatchNormalization in its conv blocks and one
with keras.layers.BatchNormalization (the baseline), and times full train steps (forward, joint loss,
backward, Adam) on one batch from make_dataset, 128 digits and their extras, in interleaved rounds
so that both meet the same machine. Prints ms per step: the median of the rounds, and each round.
Usage: python -m bench.training_step [--rounds 3] [--steps 40] [--precision mixed_bfloat16]
"""

import argparse
import os
import statistics
import sys
import time
from types import SimpleNamespace

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from contract import mnist  # noqa: E402 - after the log level is set, before TensorFlow loads
from training.train import DEFAULTS, PRECISIONS, joint_loss, make_dataset, model_for  # noqa: E402


def batches(batch_size: int):
    """One batch of random digits and extras from make_dataset (training's own targets), repeated."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (batch_size, *mnist.INPUT_SHAPE[:2]), dtype=np.uint8)
    labels = rng.integers(0, mnist.NUM_CLASSES, batch_size)
    extras = rng.random((batch_size, *mnist.INPUT_SHAPE[:2]), dtype=np.float32)
    half = batch_size // 2
    data = make_dataset(images, labels, batch_size, 0, outliers=extras[:half], rendered=extras[half:])
    return data.take(1).cache().repeat()


def step_ms(fused: bool, data, steps: int) -> float:
    """Mean wall time of `steps` train steps of a freshly compiled CNN, after a few unmeasured ones."""
    import keras

    model = model_for(SimpleNamespace(**DEFAULTS), fused_batch_norm=fused)
    model.compile(optimizer=keras.optimizers.Adam(DEFAULTS["learning_rate"]), loss=joint_loss)
    model.fit(data, steps_per_epoch=5, epochs=1, verbose=0, shuffle=False)
    start = time.perf_counter()
    model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False)
    return 1000 * (time.perf_counter() - start) / steps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of both variants")
    parser.add_argument("--steps", type=int, default=40, help="measured train steps per variant and round")
    parser.add_argument(
        "--precision", choices=PRECISIONS, default=DEFAULTS["precision"], help="Keras dtype policy"
    )
    args = parser.parse_args()
    if args.rounds < 1 or args.steps < 1:
        parser.error("--rounds and --steps must be at least 1")
    import keras

    keras.mixed_precision.set_global_policy(args.precision)
    data = batches(DEFAULTS["batch_size"])
    times = {"Keras BatchNormalization (baseline)": [], "FusedBatchNormalization": []}
    for _ in range(args.rounds):
        for name, fused in zip(times, (False, True), strict=True):
            times[name].append(step_ms(fused, data, args.steps))
    batch = DEFAULTS["batch_size"]
    print(f"train step of the CNN, batch {batch} + extras, {args.precision}, cpus: {os.cpu_count()}")
    print(f"{'batch norm in the conv blocks':<38} {'ms/step':>8} {'rounds':>22}")
    for name, values in times.items():
        median = statistics.median(values)
        rounds = " ".join(f"{v:.0f}" for v in values)
        print(f"{name:<38} {median:>8.0f} {rounds:>22}")
    baseline, fused = (statistics.median(v) for v in times.values())
    print(f"fused batch norm: {baseline / fused:.2f}x the baseline's steps per second")
    return 0


if __name__ == "__main__":
    sys.exit(main())
