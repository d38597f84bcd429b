"""training/characters.py: held-out characters and their twins stay out of training; digit look-alikes too."""

import numpy as np
import pytest

from training import characters
from training.characters import (
    DIGIT_LIKE_CHARS,
    HELD_OUT_LETTERS,
    HELD_OUT_SYMBOLS,
    candidates,
    is_digit_like_by_name,
    is_held_out,
)

pytestmark = pytest.mark.unit


def test_held_out_characters_and_their_twins_are_recognised():
    for ch in HELD_OUT_LETTERS + HELD_OUT_SYMBOLS:
        assert is_held_out(ch), ch
    # other case, accented form, same shape under another name
    for twin in "илыяЉЊλσςƛЍӢӤ∑⇒⟶➔✓✔∧⋀⌃▴△▶▷∇♩‱⋂∆⌞":
        assert is_held_out(twin), twin
    for other in "AEFHKMWXЖШ★♥+=":
        assert not is_held_out(other), other


def test_digit_shapes_are_recognised_by_list_base_or_name():
    for ch in "0aeSZgЗБÖòŚżíƷʒȜƧ∞∅⊂○◯":
        assert is_digit_like_by_name(ch), ch
    for ch in "AEHKMNRWXYЖШ★":
        assert not is_digit_like_by_name(ch), ch


def test_candidates_hold_no_held_out_digit_like_or_numeric_character():
    chars = candidates()
    assert len(chars) == len(set(chars)) > 500
    assert not set(chars) & set(HELD_OUT_LETTERS + HELD_OUT_SYMBOLS + DIGIT_LIKE_CHARS)
    assert not [ch for ch in chars if ch.isnumeric()]


def test_a_glyph_that_renders_like_a_digit_is_dropped():
    # A fake renderer (unit level): "K" renders exactly as a 7 does, "W" as something else.
    seven = np.zeros((28, 28), np.float32)
    seven[5, 6:22] = 1
    seven[5:23, 21] = 1
    other = np.zeros((28, 28), np.float32)
    other[4:24, 4:24] = np.eye(20, dtype=np.float32) + np.fliplr(np.eye(20, dtype=np.float32))
    blank = np.zeros((28, 28), np.float32)
    blank[14, 14] = 1

    def render(ch):
        return [seven] if ch in "7K" else [other] if ch == "W" else [blank] if ch.isdigit() else []

    kept = characters.training_non_digit_chars(render)
    assert "W" in kept and "K" not in kept
