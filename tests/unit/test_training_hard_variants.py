"""The hard variants: real uploads of the right format, reproducible from the seed, each unlike the digit."""

import io

import numpy as np
import pytest
from PIL import Image

from training.hard_variants import HARD_VARIANTS, VARIANTS

pytestmark = pytest.mark.unit


def digit() -> np.ndarray:
    """A thick synthetic 0: a ring, white on black."""
    y, x = np.mgrid[:28, :28]
    radius = np.hypot(y - 14, x - 14)
    return ((radius > 5) & (radius < 9)).astype(np.uint8) * 255


def test_hard_variants_are_every_variant_but_clean():
    assert list(VARIANTS)[0] == "clean"
    assert set(HARD_VARIANTS) == set(VARIANTS) - {"clean"}


@pytest.mark.parametrize("name", list(VARIANTS))
def test_variant_is_a_decodable_grayscale_image(name):
    image = Image.open(io.BytesIO(VARIANTS[name](digit(), np.random.default_rng(0))))
    assert image.format == ("JPEG" if name == "jpeg" else "PNG")
    assert image.mode == "L"
    assert min(image.size) >= 28


@pytest.mark.parametrize("name", list(VARIANTS))
def test_variant_is_reproducible_from_the_seed(name):
    make = VARIANTS[name]
    assert make(digit(), np.random.default_rng(5)) == make(digit(), np.random.default_rng(5))


@pytest.mark.parametrize("name", list(HARD_VARIANTS))
def test_hard_variant_differs_from_the_clean_digit(name):
    clean = VARIANTS["clean"](digit(), np.random.default_rng(0))
    assert HARD_VARIANTS[name](digit(), np.random.default_rng(0)) != clean
