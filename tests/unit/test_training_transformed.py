"""training/transformed.py: digits mirrored or turned into non-digits, never into a digit."""

import numpy as np
import pytest

from training.transformed import TRANSFORMS, allowed_pairs, transformed_non_digits

pytestmark = pytest.mark.unit


def _digits(per_class: int = 30, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random uint8 'digits' with labels: distinct arrays, so each transformed one traces to its source."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(10), per_class)
    return rng.integers(0, 256, (len(labels), 28, 28), dtype=np.uint8), labels


def test_symmetric_and_swapping_digits_are_never_transformed_into_themselves_or_each_other():
    pairs = set(allowed_pairs())
    for label in (0, 1, 8):  # the same digit mirrored
        assert ("mirrored", label) not in pairs
    for label in (6, 9):  # a 6 upside down is a 9
        assert ("turned_180", label) not in pairs
    assert ("flipped", 3) not in pairs  # a 3 flipped top to bottom is a 3
    assert ("mirrored", 7) in pairs and ("turned_left", 4) in pairs


def test_output_is_float_in_unit_range_and_deterministic():
    images, labels = _digits()
    a = transformed_non_digits(images, labels, 120, seed=3)
    b = transformed_non_digits(images, labels, 120, seed=3)
    assert a.shape == (120, 28, 28) and a.dtype == np.float32
    assert a.min() >= 0.0 and a.max() <= 1.0
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, transformed_non_digits(images, labels, 120, seed=4))


def test_every_image_is_an_allowed_transform_of_an_input_digit():
    images, labels = _digits()
    out = transformed_non_digits(images, labels, 2 * len(allowed_pairs()), seed=1)
    seen = set()
    for image in out:
        matches = [
            (name, int(labels[i]))
            for name, (transform, _) in TRANSFORMS.items()
            for i in range(len(images))
            if np.array_equal(transform(images[i]).astype(np.float32) / 255.0, image)
        ]
        assert matches, "an output image is no transform of any input digit"
        assert set(matches) <= set(allowed_pairs())
        seen.update(matches)
    assert seen == set(allowed_pairs())  # every pair has its share


def test_a_missing_class_is_an_error():
    images, labels = _digits()
    keep = labels != 7
    with pytest.raises(ValueError, match="class 7"):
        transformed_non_digits(images[keep], labels[keep], 100, seed=0)


@pytest.mark.parametrize("flag", ["--transformed-digits", "--outliers", "--rendered-digits", "--limit"])
def test_a_negative_count_is_a_usage_error_not_a_traceback(flag, capsys):
    from training.train import parse_args

    with pytest.raises(SystemExit) as exit_info:
        parse_args([flag, "-5"])
    assert exit_info.value.code == 2
    assert "must be >= 0, got -5" in capsys.readouterr().err
    assert getattr(parse_args([flag, "7"]), flag[2:].replace("-", "_")) == 7
