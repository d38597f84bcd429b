"""The CNN and the augmentation that teaches it digits drawn off-centre, rotated, thick or thin."""

import keras
from keras import layers

from contract import mnist

LOGITS_LAYER = "logits"  # the ten digit classes
DETECTOR_LAYER = "digit_logit"  # is this a digit at all: one logit, or one per class (training/judgement.py)


def build_model(
    dropout: float = 0.25,
    dense_units: int = 256,
    detector_units: int = 128,
    detector_gradient: float = 1.0,
    class_detectors: bool = True,
    fused_batch_norm: bool = True,
) -> keras.Model:
    """Two conv blocks (conv-BN-ReLU x2, max pool, dropout), then two heads, each its own dense layer.

    Output [n, 11], or [n, 20] with `class_detectors`. Columns 0-9 are the digit logits (no softmax folded
    in: calibration divides them by a temperature at export); the rest are the digit detector's logits,
    trained against synthetic non-digits: one for "any digit", or one per class ("is this a good c?", the
    other classes among its negatives), of which the best speaks for the image (split_outputs).
    The detectors are sigmoids, not an 11th class, so a digit's class scores never compete with "not a
    digit"; and have their own dense layer, so the features the classes read are the classes' alone.
    `detector_gradient` scales the detector's gradient into the shared conv layers (forward unchanged).
    `fused_batch_norm=False` trains the conv blocks with Keras' own BatchNormalization (the benchmark's
    baseline); the weights and the trained function are the same either way.
    """
    batch_norm = FusedBatchNormalization if fused_batch_norm else layers.BatchNormalization
    inputs = keras.Input(shape=mnist.INPUT_SHAPE, name=mnist.INPUT_KEY)
    x = inputs
    for filters in (32, 64):
        for _ in range(2):
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
            x = batch_norm()(x)
            x = layers.ReLU()(x)
        x = layers.MaxPooling2D()(x)
        x = layers.Dropout(dropout)(x)
    features = layers.Flatten()(x)
    logits = layers.Dense(mnist.NUM_CLASSES, name=LOGITS_LAYER)(_dense_block(features, dense_units, dropout))
    detector_features = GradientScale(detector_gradient)(features)
    detectors = layers.Dense(mnist.NUM_CLASSES if class_detectors else 1, name=DETECTOR_LAYER)(
        _dense_block(detector_features, detector_units, dropout)
    )
    # float32 out whatever the compute precision (mixed bfloat16 training), so the losses are float32.
    outputs = layers.Concatenate(dtype="float32")([logits, detectors])
    return keras.Model(inputs, outputs, name="mnist_cnn")


class FusedBatchNormalization(layers.BatchNormalization):
    """Keras' BatchNormalization over NHWC maps, whose training step runs TensorFlow's fused kernel.

    Keras 3 normalises a training batch with separate ops in float32 (moments, then the affine), which
    took about 60 % of this CNN's train step here; the fused kernel halves the step (`make bench`,
    bench/training_step.py). Same weights, same inference path, same moving-average update; the batch
    variance it averages is Bessel-corrected, n/(n-1) with n = batch x height x width (over 30,000 here).
    """

    def call(self, inputs, training=None, mask=None):
        fusable = len(inputs.shape) == 4 and self.axis in (-1, 3) and self.center and self.scale
        if not (training and self.trainable and fusable) or mask is not None or self.renorm:
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        # TensorFlow 2's public wrapper of the fused kernel lives in tf.compat.v1 (tf.nn has none).
        outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            inputs,
            keras.ops.cast(self.gamma, "float32"),
            keras.ops.cast(self.beta, "float32"),
            epsilon=self.epsilon,
            is_training=True,
        )
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        return outputs


class GradientScale(layers.Layer):
    """Identity forward; scales the gradient that flows back through it by `factor`."""

    def __init__(self, factor: float, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, x):
        return x * self.factor + keras.ops.stop_gradient(x) * (1.0 - self.factor)

    def get_config(self):
        return super().get_config() | {"factor": self.factor}


def _dense_block(x, units: int, dropout: float):
    """Dense-BN-ReLU with twice the conv blocks' dropout."""
    x = layers.Dense(units, use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    return layers.Dropout(2 * dropout)(x)


def split_outputs(outputs):
    """(digit logits [n, 10], detector logit [n]) from the model's output: the best of its detectors."""
    return outputs[:, : mnist.NUM_CLASSES], keras.ops.max(outputs[:, mnist.NUM_CLASSES :], axis=-1)


def has_class_detectors(model: keras.Model) -> bool:
    """Whether the model's detector has a logit per class (split_outputs' layout), not one for any digit."""
    return model.output_shape[-1] > mnist.NUM_CLASSES + 1


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
