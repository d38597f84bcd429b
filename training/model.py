"""The CNN and the augmentation that teaches it digits drawn off-centre, rotated, thick or thin."""

import keras
from keras import layers

from contract import mnist

LOGITS_LAYER = "logits"  # the ten digit classes
DETECTOR_LAYER = "digit_logit"  # one more logit: is this a digit at all (training/judgement.py)


def build_model(dropout: float = 0.25, dense_units: int = 256) -> keras.Model:
    """Two conv blocks (conv-BN-ReLU x2, max pool, dropout), a dense layer, two heads; [n, 11] out.

    Columns 0-9 are the digit logits (no softmax folded in: calibration divides them by a temperature at
    export); column 10 is the digit detector's logit, trained against synthetic non-digits. The detector
    is its own sigmoid, not an 11th class, so a digit's class scores never compete with "not a digit".
    """
    inputs = keras.Input(shape=mnist.INPUT_SHAPE, name=mnist.INPUT_KEY)
    x = inputs
    for filters in (32, 64):
        for _ in range(2):
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
            x = layers.BatchNormalization()(x)
            x = layers.ReLU()(x)
        x = layers.MaxPooling2D()(x)
        x = layers.Dropout(dropout)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(dense_units, use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    x = layers.Dropout(2 * dropout)(x)
    logits = layers.Dense(mnist.NUM_CLASSES, name=LOGITS_LAYER)(x)
    detector = layers.Dense(1, name=DETECTOR_LAYER)(x)
    # float32 out whatever the compute precision (mixed bfloat16 training), so the losses are float32.
    outputs = layers.Concatenate(dtype="float32")([logits, detector])
    return keras.Model(inputs, outputs, name="mnist_cnn")


def split_outputs(outputs):
    """(digit logits [n, 10], detector logit [n]) from the model's [n, 11] output."""
    return outputs[:, : mnist.NUM_CLASSES], outputs[:, mnist.NUM_CLASSES]


def build_augmenter(rotation_deg: float, shift: float, zoom: float, seed: int) -> keras.Sequential:
    """Random rotation, shift and zoom; the frame fills with black, never with mirrored strokes."""
    return keras.Sequential(
        [
            layers.RandomRotation(rotation_deg / 360.0, fill_mode="constant", seed=seed),
            layers.RandomTranslation(shift, shift, fill_mode="constant", seed=seed + 1),
            layers.RandomZoom(zoom, zoom, fill_mode="constant", seed=seed + 2),
        ],
        name="augmenter",
    )
