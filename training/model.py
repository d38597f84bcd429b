"""The CNN and the augmentation that teaches it digits drawn off-centre, rotated, thick or thin."""

import keras
from keras import layers

from contract import mnist

FEATURES_LAYER = "features"  # the penultimate activations the "not a digit" score is computed on
LOGITS_LAYER = "logits"


def build_model(dropout: float = 0.25, dense_units: int = 256) -> keras.Model:
    """Two conv blocks (conv-BN-ReLU x2, max pool, dropout), a dense head with dropout, logits out.

    The softmax is not folded in: calibration divides the logits by a temperature and the digit judgement
    reads the penultimate features (FEATURES_LAYER), both at export (training/export.py).
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
    x = layers.ReLU(name=FEATURES_LAYER)(x)
    x = layers.Dropout(2 * dropout)(x)
    outputs = layers.Dense(mnist.NUM_CLASSES, name=LOGITS_LAYER)(x)
    return keras.Model(inputs, outputs, name="mnist_cnn")


def with_features(model: keras.Model) -> keras.Model:
    """The same layers and weights, answering (features, logits)."""
    return keras.Model(model.inputs, [model.get_layer(FEATURES_LAYER).output, model.outputs[0]])


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
