"""Harder variants of MNIST digits, encoded as the image uploads a person would send (PNG or JPEG bytes).

Each generator takes a uint8 28x28 white-on-black digit and a NumPy Generator (for the random ones) and
returns the encoded file. `make compare`, `make evaluate` and the trust sets all use these, so the
variants measured are the same everywhere.
"""

import io
from collections.abc import Callable

import cv2
import numpy as np
from PIL import Image


def _encode(image: np.ndarray, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, fmt, **options)
    return buffer.getvalue()


def _upscale(digit: np.ndarray, factor: int = 4) -> np.ndarray:
    return cv2.resize(digit, (28 * factor, 28 * factor), interpolation=cv2.INTER_CUBIC)


def clean(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """The MNIST digit as stored: 28x28, white on black."""
    return _encode(digit)


def inverted(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """Dark ink on white paper, at 4x resolution (a scan or a canvas export)."""
    return _encode(255 - _upscale(digit))


def off_centre(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """The digit in a random corner region of a 3x larger canvas."""
    canvas = np.zeros((84, 84), np.uint8)
    top, left = rng.integers(0, 57, size=2)
    canvas[top : top + 28, left : left + 28] = digit
    return _encode(canvas)


def rescaled(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """The digit shrunk to 35-60% of its size in a 28x28 frame, or blown up to fill it."""
    if rng.random() < 0.5:
        side = int(round(28 * rng.uniform(0.35, 0.6)))
        small = cv2.resize(digit, (side, side), interpolation=cv2.INTER_AREA)
        canvas = np.zeros((28, 28), np.uint8)
        offset = (28 - side) // 2
        canvas[offset : offset + side, offset : offset + side] = small
        return _encode(canvas)
    ys, xs = np.nonzero(digit > 30)
    crop = digit[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    scale = 28 / max(crop.shape)  # fill the frame on the longer side, keeping the aspect ratio
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    big = cv2.resize(crop, size, interpolation=cv2.INTER_CUBIC)
    canvas = np.zeros((28, 28), np.uint8)
    top, left = (28 - size[1]) // 2, (28 - size[0]) // 2
    canvas[top : top + size[1], left : left + size[0]] = big
    return _encode(canvas)


def thick(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """Strokes dilated to about twice their width (a marker), at 4x resolution."""
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (11, 11))
    return _encode(cv2.dilate(_upscale(digit), kernel))


def thin(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """Strokes eroded to about half their width (a fine pen), at 4x resolution."""
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
    return _encode(cv2.erode(_upscale(digit), kernel))


def noisy(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """Gaussian sensor noise plus salt-and-pepper specks on a 4x scan."""
    big = _upscale(digit).astype(np.float32)
    big += rng.normal(0, 40, big.shape)
    specks = rng.random(big.shape)
    big[specks < 0.01] = 255
    big[specks > 0.99] = 0
    return _encode(np.clip(big, 0, 255).astype(np.uint8))


def jpeg(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A heavily compressed JPEG (quality 15) of a dark-on-light 2x photo-like image."""
    return _encode(255 - _upscale(digit, 2), "JPEG", quality=15)


Variant = Callable[[np.ndarray, np.random.Generator], bytes]

# Every variant, `clean` first (the unchanged digit, the reference the hard ones are compared with).
VARIANTS: dict[str, Variant] = {
    "clean": clean,
    "inverted": inverted,
    "off_centre": off_centre,
    "rescaled": rescaled,
    "thick": thick,
    "thin": thin,
    "noisy": noisy,
    "jpeg": jpeg,
}
# The hard ones only.
HARD_VARIANTS: dict[str, Variant] = {name: make for name, make in VARIANTS.items() if name != "clean"}
