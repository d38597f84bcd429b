"""Systematic writing styles on MNIST digits: what a group of users might write that the model misreads.

Each style draws on a 4x enlarged digit and returns the enlarged image, as a photo or a canvas would give
it, so the gateway's own preprocessing makes the model input.
"""

from collections.abc import Callable

import cv2
import numpy as np

SCALE = 4  # 28 px MNIST digits drawn on at 112 px
INK_LEVEL = 64  # pixels above this count as the digit's ink when placing a mark
MARK_WIDTH_PX = 7  # about a pen's width at this scale


def enlarged(digit: np.ndarray) -> np.ndarray:
    """A uint8 28x28 digit as a 112x112 uint8 image."""
    side = digit.shape[0] * SCALE
    return cv2.resize(digit, (side, side), interpolation=cv2.INTER_LINEAR)


def underlined(digit: np.ndarray) -> np.ndarray:
    """The digit with a line drawn under it, as some people underline their numbers (v1 reads ~83%)."""
    image = enlarged(digit).copy()
    rows, columns = np.nonzero(image > INK_LEVEL)
    y = min(image.shape[0] - MARK_WIDTH_PX, int(rows.max()) + 10)
    left, right = int(columns.min()) - 4, int(columns.max()) + 4
    cv2.line(image, (left, y), (right, y), 255, MARK_WIDTH_PX)
    return image


def boxed(digit: np.ndarray) -> np.ndarray:
    """The digit written in a box of a paper form, the box's lines scanned with it (v1 reads ~34%)."""
    margin = 14
    side = digit.shape[0] * SCALE + 2 * margin
    image = np.zeros((side, side), np.uint8)
    image[margin:-margin, margin:-margin] = enlarged(digit)
    cv2.rectangle(image, (6, 6), (side - 7, side - 7), 255, MARK_WIDTH_PX - 1)
    return image


def plain(digit: np.ndarray) -> np.ndarray:
    """The digit as MNIST wrote it, enlarged like the styled ones."""
    return enlarged(digit)


STYLES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "underlined": underlined,
    "boxed": boxed,
    "plain": plain,
}


def png(image: np.ndarray) -> bytes:
    """A uint8 grey image as PNG bytes (white ink on black, as MNIST)."""
    ok, encoded = cv2.imencode(".png", image)
    if not ok:
        raise ValueError("PNG encoding failed")
    return encoded.tobytes()
