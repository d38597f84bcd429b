"""Fine-tune a published version itself: its SavedModel's own graph and variables, whatever code made it.

A version is reloaded with TensorFlow's public SavedModel API and trained through its `serving_default`
signature, so any version can be retrained: the baseline too, whose Keras source code no longer exists.
That signature runs in inference mode: batch normalisation keeps its moving statistics (the usual choice
when fine-tuning) and dropout is off. Images are not augmented: measured here, training's rotation, shift
and zoom cost 17 MNIST test errors in a retrain that cost none without them. Only the ten classes are
trained; the temperature and the "not a digit" threshold stay the version's, and the card measures both.
"""

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from contract import mnist


def replay_batches(
    corrections: np.ndarray,
    correction_labels: np.ndarray,
    replay: np.ndarray,
    replay_labels: np.ndarray,
    *,
    ratio: int,
    batch_size: int,
    epochs: int,
    seed: int,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Shuffled (images [b, 28, 28, 1] float32, labels [b]) batches: each epoch is every correction once
    and `ratio` times as many MNIST images drawn afresh, so the model keeps what it knew."""
    rng = np.random.default_rng(seed)
    per_epoch = min(len(replay), ratio * len(corrections))
    for _ in range(epochs):
        chosen = rng.choice(len(replay), size=per_epoch, replace=False)
        images = np.concatenate([corrections, as_model_input(replay[chosen])])
        labels = np.concatenate([correction_labels, replay_labels[chosen]]).astype(np.int64)
        order = rng.permutation(len(images))
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            yield images[batch][..., None], labels[batch]


def batches_per_epoch(corrections: int, replay: int, ratio: int, batch_size: int) -> int:
    """How many batches replay_batches yields per epoch."""
    return -(-(corrections + min(replay, ratio * corrections)) // batch_size)


def as_model_input(images: np.ndarray) -> np.ndarray:
    """uint8 (0-255) or float [n, 28, 28] images as float32 in [0, 1]."""
    if images.dtype == np.uint8:
        return images.astype(np.float32) / 255.0
    return images.astype(np.float32)


class FineTuner:
    """A loaded version, an Adam optimiser on its trainable variables, and a compiled training step."""

    def __init__(self, version_dir: Path, learning_rate: float):
        import keras
        import tensorflow as tf

        self.loaded = tf.saved_model.load(str(version_dir))
        serve = self.loaded.signatures[mnist.SIGNATURE_NAME]
        variables = list(self.loaded.trainable_variables)
        optimizer = keras.optimizers.Adam(learning_rate)

        @tf.function(reduce_retracing=True)
        def step(images, labels):
            with tf.GradientTape() as tape:
                probabilities = serve(**{mnist.INPUT_KEY: images})[mnist.PROBABILITIES_KEY]
                loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(labels, probabilities))
            optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
            return loss

        self._step = step

    def step(self, images: np.ndarray, labels: np.ndarray) -> float:
        """One optimiser step on a batch; its mean cross-entropy before the step."""
        return float(self._step(images, labels))

    def save(self, target: Path) -> None:
        """Write the fine-tuned SavedModel, every signature of the original, to a new directory."""
        import tensorflow as tf

        tf.saved_model.save(self.loaded, str(target), signatures=dict(self.loaded.signatures))
