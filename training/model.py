"""The CNN and the augmentation that teaches it digits drawn off-centre, rotated, thick or thin."""

import keras
from keras import layers

from contract import mnist


def build_model(dropout: float = 0.25, dense_units: int = 256) -> keras.Model:
    """Two conv blocks (conv-BN-ReLU x2, max pool, dropout), a dense head with dropout, softmax."""
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
    outputs = layers.Dense(mnist.NUM_CLASSES, activation="softmax", name=mnist.PROBABILITIES_KEY)(x)
    return keras.Model(inputs, outputs, name="mnist_cnn")


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
