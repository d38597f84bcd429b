"""training/train.py's batches and joint loss, and model.py's gradient scale: who trains what."""

import numpy as np
import pytest

from contract import mnist

pytestmark = pytest.mark.unit

tf = pytest.importorskip("tensorflow")


def _logits(class_logits, detector_logit):
    return np.array([[*class_logits, detector_logit]], np.float32)


def _targets():
    """Targets of an MNIST 1, a rendered digit (no class) and a non-digit, as make_dataset writes them."""
    mnist_digit = np.eye(11, dtype=np.float32)[[1]]
    mnist_digit[0, mnist.NUM_CLASSES] = 1.0
    rendered_digit = np.zeros((1, 11), np.float32)
    rendered_digit[0, mnist.NUM_CLASSES] = 1.0
    return mnist_digit, rendered_digit, np.zeros((1, 11), np.float32)


def _bce(target, logit):
    p = 1 / (1 + np.exp(-np.asarray(logit, np.float64)))
    return -(target * np.log(p) + (1 - target) * np.log(1 - p))


def test_joint_loss_trains_classes_on_mnist_digits_only():
    from training.train import joint_loss

    outputs = _logits([2.0, 0.5, *[0.0] * 8], 1.5)
    mnist_digit, rendered_digit, non_digit = _targets()
    class_ce = -np.log(np.exp(0.5) / np.exp(outputs[0, :10]).sum())
    assert float(joint_loss(mnist_digit, outputs)[0]) == pytest.approx(class_ce + _bce(1, 1.5), rel=1e-5)
    assert float(joint_loss(rendered_digit, outputs)[0]) == pytest.approx(_bce(1, 1.5), rel=1e-5)
    assert float(joint_loss(non_digit, outputs)[0]) == pytest.approx(_bce(0, 1.5), rel=1e-5)


def test_batches_carry_non_digits_and_rendered_digits_with_their_targets():
    from training.train import OUTLIER_BATCH_SHARE, make_dataset

    images = np.full((64, 28, 28), 255, np.uint8)
    labels = np.arange(64) % 10
    outliers = np.full((40, 28, 28), 0.25, np.float32)
    rendered = np.full((40, 28, 28), 0.75, np.float32)
    x, y = next(iter(make_dataset(images, labels, 32, 0, outliers=outliers, rendered=rendered)))
    x, y = x.numpy(), y.numpy()
    extra = round(32 * OUTLIER_BATCH_SHARE)
    assert len(x) == 32 + extra
    assert np.allclose(x[:32], 1.0) and np.allclose(y[:32, :10].sum(axis=1), 1.0) and np.all(y[:32, 10] == 1)
    tail_pixels, tail_targets = x[32:, 0, 0, 0], y[32:]
    assert {0.25, 0.75} == set(tail_pixels.round(2).tolist())  # both kinds, mixed
    assert np.all(tail_targets[:, :10] == 0)  # no class for either kind
    assert np.all(tail_targets[tail_pixels == 0.25, 10] == 0) and np.all(
        tail_targets[tail_pixels == 0.75, 10] == 1
    )


def test_gradient_scale_is_identity_forward_and_scales_backward():
    from training.model import GradientScale

    x = tf.constant([[1.0, -2.0, 3.0]])
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = GradientScale(0.5)(x)
        total = tf.reduce_sum(y * y)
    assert np.array_equal(y.numpy(), x.numpy())
    assert np.allclose(tape.gradient(total, x).numpy(), 0.5 * 2 * x.numpy())


def test_class_detectors_score_the_best_class_and_learn_each_class_against_the_rest():
    from training.model import split_outputs
    from training.train import joint_loss

    outputs = np.array([[2.0, 0.5, *[0.0] * 8, -1.0, 3.0, *[-2.0] * 8]], np.float32)
    _, detector = split_outputs(outputs)
    assert float(detector[0]) == pytest.approx(3.0)  # the best class detector speaks for the image
    mnist_digit, rendered_digit, non_digit = _targets()
    detectors = outputs[0, 10:]
    class_ce = -np.log(np.exp(0.5) / np.exp(outputs[0, :10]).sum())
    one_vs_rest = _bce(np.eye(10)[1], detectors).mean()
    all_against = _bce(np.zeros(10), detectors).mean()
    assert float(joint_loss(mnist_digit, outputs)[0]) == pytest.approx(
        class_ce + _bce(1, 3.0) + one_vs_rest, rel=1e-5
    )
    assert float(joint_loss(rendered_digit, outputs)[0]) == pytest.approx(_bce(1, 3.0), rel=1e-5)
    assert float(joint_loss(non_digit, outputs)[0]) == pytest.approx(_bce(0, 3.0) + all_against, rel=1e-5)
