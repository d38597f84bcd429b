"""The judging version's `explain` signature on MNIST test digits: on the strokes, and faithful to it.

With a black baseline, integrated gradients give no attribution to a pixel with no ink, so "on the
strokes" mostly checks the faint anti-aliased rim carries little. The deletion check is the stronger
one: erasing the ink the explanation ranks highest must hurt the answer more than erasing as much
randomly chosen ink.
"""

import numpy as np
import pytest

from contract import mnist
from tests.support.model_server import COMMITTED_MODEL_DIR
from tests.support.signature_models import newest_version_with
from training.dataset import DEFAULT_DATA_DIR

JUDGING = newest_version_with(mnist.EXPLAIN_SIGNATURE_NAME)
DATA_DIR = COMMITTED_MODEL_DIR.parents[1] / DEFAULT_DATA_DIR
SAMPLES = 200
MIN_ON_STROKES = 0.8
INK = 0.1  # a pixel at least this bright is stroke
ERASED_SHARE = 0.15  # of each digit's ink pixels

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (DATA_DIR / "t10k-labels-idx1-ubyte").is_file(), reason="run `make data` first"),
]


@pytest.fixture(scope="module")
def explained():
    """(images [n, 28, 28] in [0, 1], attribution [n, 28, 28], explained digit [n], the loaded model)."""
    import tensorflow as tf

    from training.dataset import load_mnist

    _, test = load_mnist(DATA_DIR)
    chosen = np.random.default_rng(0).choice(len(test.images), SAMPLES, replace=False)
    images = test.images[chosen].astype(np.float32) / 255.0
    model = tf.saved_model.load(str(JUDGING))
    out = model.signatures[mnist.EXPLAIN_SIGNATURE_NAME](**{mnist.INPUT_KEY: tf.constant(images[..., None])})
    return images, out[mnist.ATTRIBUTION_KEY].numpy(), out[mnist.DIGIT_KEY].numpy(), model


def dilated(mask: np.ndarray) -> np.ndarray:
    """The mask grown by one pixel in every direction (3x3), per image."""
    padded = np.pad(mask, ((0, 0), (1, 1), (1, 1)))
    grown = np.zeros_like(mask)
    for dy in range(3):
        for dx in range(3):
            grown |= padded[:, dy : dy + 28, dx : dx + 28]
    return grown


def test_most_positive_attribution_is_on_the_dilated_strokes(explained):
    images, attribution, _, _ = explained
    positive = np.clip(attribution, 0, None)
    on_strokes = (positive * dilated(images >= INK)).sum() / positive.sum()
    assert on_strokes >= MIN_ON_STROKES


def test_the_explained_digit_is_the_served_answer(explained):
    import tensorflow as tf

    images, _, digits, model = explained
    served = model.signatures[mnist.SIGNATURE_NAME](**{mnist.INPUT_KEY: tf.constant(images[..., None])})
    np.testing.assert_array_equal(digits, served[mnist.DIGIT_KEY].numpy())


def test_erasing_the_top_attributed_ink_hurts_more_than_erasing_random_ink(explained):
    import tensorflow as tf

    images, attribution, digits, model = explained
    rng = np.random.default_rng(1)
    top, random = images.copy(), images.copy()
    for i in range(len(images)):
        ink = np.flatnonzero(images[i] >= INK)
        count = max(1, int(len(ink) * ERASED_SHARE))
        ranked = ink[np.argsort(attribution[i].ravel()[ink])[::-1]]
        top[i].ravel()[ranked[:count]] = 0.0
        random[i].ravel()[rng.choice(ink, count, replace=False)] = 0.0

    def true_class_probability(batch):
        served = model.signatures[mnist.SIGNATURE_NAME](**{mnist.INPUT_KEY: tf.constant(batch[..., None])})
        return served[mnist.PROBABILITIES_KEY].numpy()[np.arange(len(batch)), digits]

    assert true_class_probability(top).mean() < true_class_probability(random).mean() - 0.1
