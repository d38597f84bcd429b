"""training/model.py's FusedBatchNormalization: Keras' BatchNormalization, trained on the fused kernel."""

import numpy as np
import pytest

pytestmark = pytest.mark.unit

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")


def _pair(shape):
    """Keras' layer and the fused one, built alike with the same non-trivial weights."""
    from training.model import FusedBatchNormalization

    rng = np.random.default_rng(0)
    plain, fused = keras.layers.BatchNormalization(momentum=0.9), FusedBatchNormalization(momentum=0.9)
    for layer in (plain, fused):
        layer.build(shape)
    weights = [rng.normal(1.0, 0.3, shape[-1]), rng.normal(0.0, 0.3, shape[-1])]
    weights += [rng.normal(0.0, 1.0, shape[-1]), rng.uniform(0.5, 2.0, shape[-1])]
    for layer in (plain, fused):
        layer.set_weights([w.astype(np.float32) for w in weights])
    return plain, fused


def _batch(shape):
    return tf.constant(np.random.default_rng(1).normal(2.0, 3.0, (16, *shape[1:])).astype(np.float32))


def test_training_step_matches_keras_batch_norm_outputs_gradients_and_moving_statistics():
    plain, fused = _pair((None, 7, 7, 8))
    x = _batch((None, 7, 7, 8))
    initial_variance = plain.moving_variance.numpy()
    results = []
    for layer in (plain, fused):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(tf.sin(y) * tf.range(1, 9, dtype=tf.float32))
        grads = tape.gradient(loss, [x, layer.gamma, layer.beta])
        results.append((y, grads, layer.moving_mean.numpy(), layer.moving_variance.numpy()))
    (y0, g0, mean0, var0), (y1, g1, mean1, var1) = results
    np.testing.assert_allclose(y1, y0, atol=1e-4)
    for a, b in zip(g1, g0, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(mean1, mean0, rtol=1e-5, atol=1e-6)
    # Keras averages in the batch's variance, the fused kernel its Bessel-corrected one: n / (n - 1).
    n = 16 * 7 * 7
    batch_variance = np.var(x.numpy().reshape(-1, 8), axis=0)
    np.testing.assert_allclose(var0, 0.9 * initial_variance + 0.1 * batch_variance, rtol=1e-5)
    np.testing.assert_allclose(var1, 0.9 * initial_variance + 0.1 * batch_variance * n / (n - 1), rtol=1e-5)


def test_inference_and_dense_inputs_take_keras_own_path():
    plain, fused = _pair((None, 7, 7, 8))
    x = _batch((None, 7, 7, 8))
    np.testing.assert_array_equal(fused(x, training=False), plain(x, training=False))
    plain, fused = _pair((None, 8))
    x = tf.constant(np.random.default_rng(2).normal(size=(16, 8)).astype(np.float32))
    np.testing.assert_array_equal(fused(x, training=True), plain(x, training=True))
    np.testing.assert_array_equal(fused.moving_variance.numpy(), plain.moving_variance.numpy())


def test_a_frozen_layer_normalises_with_its_moving_statistics():
    plain, fused = _pair((None, 7, 7, 8))
    fused.trainable = False
    x = _batch((None, 7, 7, 8))
    before = fused.get_weights()
    np.testing.assert_array_equal(fused(x, training=True), plain(x, training=False))
    for a, b in zip(fused.get_weights(), before, strict=True):
        np.testing.assert_array_equal(a, b)


def test_the_cnn_uses_it_in_its_conv_blocks():
    from training.model import FusedBatchNormalization, build_model

    layers = build_model().layers
    assert sum(isinstance(layer, FusedBatchNormalization) for layer in layers) == 4
    assert sum(type(layer) is keras.layers.BatchNormalization for layer in layers) == 2  # the dense blocks
