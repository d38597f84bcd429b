"""Integrated gradients: exact on a linear model, complete (sums to the logit change) on a non-linear one."""

import numpy as np
import pytest

from contract import mnist
from training.explain import integrated_gradients

tf = pytest.importorskip("tensorflow")


def images(n, seed=0):
    return tf.constant(np.random.default_rng(seed).random((n, *mnist.INPUT_SHAPE)), tf.float32)


def test_linear_logits_are_attributed_as_input_times_weight():
    weights = tf.constant(np.random.default_rng(1).normal(size=(28 * 28, 10)), tf.float32)

    def logits_of(x):
        return tf.reshape(x, [-1, 28 * 28]) @ weights

    x = images(3)
    attribution, digit = integrated_gradients(logits_of, x)
    expected = tf.reshape(x, [3, 28 * 28]) * tf.transpose(tf.gather(weights, digit, axis=1))
    np.testing.assert_allclose(attribution.numpy().reshape(3, -1), expected.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(digit.numpy(), tf.argmax(logits_of(x), axis=-1).numpy())


def test_attributions_add_up_to_the_logit_change_from_black():
    rng = np.random.default_rng(2)
    w1 = tf.constant(rng.normal(size=(28 * 28, 32)) * 0.1, tf.float32)
    w2 = tf.constant(rng.normal(size=(32, 10)), tf.float32)

    def logits_of(x):
        return tf.nn.softplus(tf.reshape(x, [-1, 28 * 28]) @ w1) @ w2

    x = images(4, seed=3)
    attribution, digit = integrated_gradients(logits_of, x, steps=64)
    change = tf.gather(logits_of(x) - logits_of(tf.zeros_like(x)), digit, axis=1, batch_dims=1)
    np.testing.assert_allclose(attribution.numpy().sum(axis=(1, 2)), change.numpy(), rtol=0.02, atol=0.02)
