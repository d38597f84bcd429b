"""Preprocessing behaviour: every input case decodes, and enhanced output looks like an MNIST digit."""

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from gateway import preprocess
from gateway.errors import BadRequest, NoDigitFound, PayloadTooLarge, Unprocessable, UnsupportedImage
from tests.fixtures.digit_images import (
    draw_digit,
    encode,
    gif_two_frames,
    png_header_only,
    rgba_canvas,
    sixteen_bit_png,
)

MAX_PIXELS = 50_000_000


def enhanced_from(data: bytes) -> np.ndarray:
    return preprocess.enhanced(preprocess.decode_image(data, max_pixels=MAX_PIXELS))


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    """Enhanced output of a plain, centred, dark-on-white 7."""
    return enhanced_from(encode(draw_digit(7)))


def assert_mnist_like(image: np.ndarray) -> None:
    """28x28 float32 in [0,1], black background, digit ~20 px on its longer side, mass centred.

    Like MNIST, centring by mass may push a lopsided digit (a 7) against an edge.
    """
    assert image.shape == (28, 28) and image.dtype == np.float32
    assert image.min() >= 0.0 and image.max() <= 1.0 and image.max() > 0.9
    border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
    assert border.mean() < 0.1 and (image < 0.05).mean() > 0.6, "background must be black"
    ys, xs = np.nonzero(image > 0.1)
    assert 17 <= max(np.ptp(ys) + 1, np.ptp(xs) + 1) <= 23
    moments = cv2.moments(image)
    assert abs(moments["m10"] / moments["m00"] - 14) < 0.6
    assert abs(moments["m01"] / moments["m00"] - 14) < 0.6


CASES = {
    "png_gray": lambda: encode(draw_digit(7)),
    "jpeg": lambda: encode(draw_digit(7), "JPEG", quality=50),
    "bmp": lambda: encode(draw_digit(7), "BMP"),
    "webp": lambda: encode(draw_digit(7), "WEBP"),
    "gif_first_frame": gif_two_frames,
    "png_rgb": lambda: encode(np.dstack([draw_digit(7)] * 3)),
    "png_rgb_coloured_ink": lambda: encode(
        np.dstack([np.full((200, 200), 250, np.uint8), draw_digit(7), draw_digit(7, ink=120)])
    ),
    "canvas_rgba_black_strokes": lambda: encode(rgba_canvas(7)),
    "canvas_rgba_white_strokes": lambda: encode(rgba_canvas(7, colour=(255, 255, 255))),
    "canvas_rgba_blue_strokes": lambda: encode(rgba_canvas(7, colour=(20, 40, 220))),
    "png_16bit": sixteen_bit_png,
    "light_on_dark": lambda: encode(255 - draw_digit(7)),
    "low_contrast_grey_paper": lambda: encode(draw_digit(7, ink=100, background=150)),
    "top_left_corner": lambda: encode(draw_digit(7, box=0.3, centre=(0.16, 0.16))),
    "bottom_right_corner": lambda: encode(draw_digit(7, box=0.3, centre=(0.84, 0.84))),
    "tiny_8x8": lambda: encode(draw_digit(7, size=(8, 8), box=1.0, stroke_px=1)),
    "large_2000x3000": lambda: encode(draw_digit(7, size=(2000, 3000))),
    "wide_canvas": lambda: encode(draw_digit(7, size=(100, 600))),
    "thin_stroke": lambda: encode(draw_digit(7, size=(400, 400), stroke_px=2)),
    "thick_stroke": lambda: encode(draw_digit(7, size=(400, 400), stroke_px=45)),
    "noisy": lambda: encode(
        np.clip(
            draw_digit(7).astype(np.float32) + np.random.default_rng(0).normal(0, 30, (200, 200)), 0, 255
        ).astype(np.uint8)
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_enhanced_output_is_mnist_like_and_matches_reference(case, reference):
    image = enhanced_from(CASES[case]())
    assert_mnist_like(image)
    # A tiny 8x8 source or a hairline loses shape detail; everything else is nearly the reference.
    floor = 0.75 if case in ("tiny_8x8", "thin_stroke") else 0.85
    assert similarity(image, reference) > floor


@pytest.mark.parametrize("digit", [1, 4, 7])
def test_enhanced_keeps_aspect_ratio(digit):
    image = enhanced_from(encode(draw_digit(digit)))
    ys, xs = np.nonzero(image > 0.1)
    assert np.ptp(ys) + 1 >= 19  # the longer (vertical) side is scaled to 20 px
    if digit == 1:
        assert np.ptp(xs) + 1 < 14  # a 1 stays narrow, it is not stretched into a square


@pytest.mark.parametrize("bar_width", [4, 8, 16])
def test_a_straight_one_is_centred_not_refused(bar_width):
    # A bar narrow enough to be 2 px wide in the 20 px box: cv2.moments read that as a list of points.
    picture = np.full((200, 200), 255, np.uint8)
    picture[20:180, 100 - bar_width // 2 : 100 + bar_width // 2] = 0
    image = enhanced_from(encode(picture))
    ys, xs = np.nonzero(image > 0.1)
    assert np.ptp(ys) + 1 >= 19
    total = image.sum()
    centre = (image.sum(axis=1) @ np.arange(28) / total, image.sum(axis=0) @ np.arange(28) / total)
    assert centre == pytest.approx((14.0, 14.0), abs=1.0)


@pytest.mark.parametrize("value", [0, 128, 255])
def test_uniform_image_returns_no_digit(value):
    with pytest.raises(NoDigitFound):
        enhanced_from(encode(np.full((64, 64), value, np.uint8)))


def test_blank_transparent_canvas_returns_no_digit():
    with pytest.raises(NoDigitFound):
        enhanced_from(encode(np.zeros((280, 280, 4), np.uint8)))


def test_one_pixel_image_returns_no_digit():
    with pytest.raises(NoDigitFound):
        enhanced_from(encode(np.zeros((1, 1), np.uint8)))


def test_salt_specks_do_not_move_the_digit(reference):
    picture = draw_digit(7)
    rng = np.random.default_rng(1)
    ys, xs = rng.integers(0, 200, 40), rng.integers(0, 200, 40)
    picture[ys, xs] = 0
    assert similarity(enhanced_from(encode(picture)), reference) > 0.85


def test_standard_only_resizes_and_scales():
    picture = draw_digit(7, size=(56, 56))
    image = preprocess.standard(preprocess.decode_image(encode(picture), max_pixels=MAX_PIXELS))
    assert image.shape == (28, 28) and image.dtype == np.float32
    expected = cv2.resize(picture, (28, 28), interpolation=cv2.INTER_AREA) / 255.0
    assert np.abs(image - expected).max() < 0.01  # no inversion, no centring


def test_standard_keeps_28x28_input_unchanged():
    picture = np.random.default_rng(2).random((28, 28)).astype(np.float32)
    assert np.array_equal(preprocess.standard(picture), picture)


@pytest.mark.parametrize(
    "payload", [b"", b"not an image at all", bytes(range(256)) * 4, b"\x89PNG\r\n\x1a\n"]
)
def test_non_image_bytes_are_415_or_400(payload):
    with pytest.raises((UnsupportedImage, BadRequest)):
        preprocess.decode_image(payload, max_pixels=MAX_PIXELS)


def test_truncated_png_is_400():
    data = encode(draw_digit(7))
    with pytest.raises(BadRequest) as info:
        preprocess.decode_image(data[: len(data) // 2], max_pixels=MAX_PIXELS)
    assert info.value.status == 400


def test_unsupported_format_is_415():
    with pytest.raises(UnsupportedImage) as info:
        preprocess.decode_image(encode(draw_digit(7), "TIFF"), max_pixels=MAX_PIXELS)
    assert info.value.code == "unsupported_image_format"


def test_pixel_count_over_limit_is_413_before_decoding():
    data = encode(np.zeros((400, 400), np.uint8))
    with pytest.raises(PayloadTooLarge):
        preprocess.decode_image(data, max_pixels=100_000)


def test_decompression_bomb_header_is_rejected_cheaply():
    # A 60-byte PNG that claims 100000x100000 pixels: refused from the header, nothing is inflated.
    with pytest.raises(PayloadTooLarge):
        preprocess.decode_image(png_header_only(100_000, 100_000), max_pixels=MAX_PIXELS)


@pytest.mark.parametrize("scale", [1.0, 255.0])
def test_pixels_in_either_scale_give_the_same_image(scale):
    mnist_like = (255 - draw_digit(7, size=(28, 28), box=0.7)) / 255.0
    values = np.round(mnist_like * scale, 4) if scale == 255.0 else mnist_like
    image = preprocess.pixels_to_image(values.tolist())
    assert image.shape == (28, 28) and np.abs(image - mnist_like).max() < 0.01


@pytest.mark.parametrize(
    "pixels",
    [
        [],
        "abc",
        [[1, 2], [3]],
        [[0] * 28] * 27 + [[0] * 27],
        [[[0] * 28] * 28] * 2,
        [[True] * 28] * 28,
        [[None] * 28] * 28,
        [["1"] * 28] * 28,
        [[float("nan")] * 28] * 28,
        [[float("inf")] * 28] * 28,
        [[-1] * 28] * 28,
        [[256] * 28] * 28,
        [[10**400] * 28] * 28,
        [[0] * 4] * 4,
        [[0] * 600] * 600,
    ],
)
def test_bad_pixels_are_422(pixels):
    with pytest.raises(Unprocessable) as info:
        preprocess.pixels_to_image(pixels)
    assert info.value.status == 422


def test_processed_image_round_trips_through_png():
    image = enhanced_from(encode(draw_digit(7)))
    decoded = np.asarray(Image.open(io.BytesIO(preprocess.to_png(image))), np.float32) / 255.0
    assert decoded.shape == (28, 28) and np.abs(decoded - image).max() <= 0.5 / 255 + 1e-6


def png_as(image: np.ndarray, mode: str, **save_args) -> bytes:
    """A PNG of `image` converted to a Pillow mode (1, LA, P ...)."""
    buffer = io.BytesIO()
    Image.fromarray(image).convert(mode).save(buffer, "PNG", **save_args)
    return buffer.getvalue()


PNG_VARIANTS = {
    "gray": lambda: encode(draw_digit(7)),
    "gray_1bit": lambda: png_as(draw_digit(7), "1"),
    "gray_16bit": sixteen_bit_png,
    "gray_alpha": lambda: png_as(rgba_canvas(7), "LA"),
    "rgb": lambda: encode(np.dstack([draw_digit(7), draw_digit(7, ink=120), draw_digit(7)])),
    "rgba_canvas": lambda: encode(rgba_canvas(7)),
    "rgba_canvas_white_strokes": lambda: encode(rgba_canvas(7, colour=(255, 255, 255))),
    "palette": lambda: png_as(draw_digit(7), "P"),
    "palette_transparent": lambda: png_as(draw_digit(7), "P", transparency=255),
    "interlaced": lambda: encode(draw_digit(7), interlace=1),
}


@pytest.mark.parametrize("variant", list(PNG_VARIANTS))
def test_every_png_flavour_decodes_to_the_digit(variant):
    gray = preprocess.decode_image(PNG_VARIANTS[variant](), max_pixels=MAX_PIXELS)
    assert gray.dtype == np.float32 and gray.ndim == 2 and 0.0 <= gray.min() < gray.max() <= 1.0
    digit = preprocess.enhanced(gray)
    assert digit.shape == (28, 28) and digit.max() == pytest.approx(1.0) and digit[0].max() == 0.0


def test_png_without_its_end_chunk_still_decodes():
    data = encode(draw_digit(7))
    without_end = data[: data.rindex(b"IEND") - 4]  # Pillow reads the pixels without the end chunk
    decoded = preprocess.decode_image(without_end, max_pixels=MAX_PIXELS)
    np.testing.assert_array_equal(decoded, preprocess.decode_image(data, max_pixels=MAX_PIXELS))
