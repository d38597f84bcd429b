"""Image decoding and MNIST-style preprocessing with Pillow, OpenCV and NumPy (no TensorFlow).

Every function returns or takes 2-D float32 arrays in [0, 1]. `decode_image` gives the picture as a
person sees it (1.0 = white); `standard` and `enhanced` turn it into the model input described in
contract/mnist.py: 28x28, white digit on black.
"""

import io
import warnings
from collections.abc import Sequence

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from contract.mnist import IMAGE_HEIGHT, IMAGE_WIDTH, PREPROCESSING_MODES
from gateway.errors import BadRequest as CorruptImage
from gateway.errors import NoDigitFound, PayloadTooLarge, Unprocessable, UnsupportedImage

SUPPORTED_FORMATS = frozenset({"PNG", "JPEG", "BMP", "WEBP", "GIF"})

# MNIST geometry: the digit's longer side is 20 px, its centre of mass sits at pixel (14, 14).
DIGIT_BOX_PX = 20
CENTRE_OF_MASS_PX = 14.0
# Large inputs are shrunk before the enhanced pipeline: over 5x the detail a 20 px digit keeps,
# at a bounded cost whatever the upload size (area averaging keeps hairlines as faint grey).
WORKING_SIDE_PX = 112
# Below this contrast (on a 0-1 scale) between ink and background, there is no digit.
MIN_CONTRAST = 0.05
# Median pixel deviation from a 3x3 median above which the image is treated as noisy (0-1 scale).
NOISE_LEVEL = 0.01
# Connected ink blobs smaller than this share of the largest blob are specks of noise.
MIN_BLOB_SHARE = 0.03
# Median MNIST stroke width is ~2.2 px in the 28x28 frame; strokes far off that are normalised.
TARGET_STROKE_PX = 2.2


def decode_image(data: bytes, *, max_pixels: int) -> np.ndarray:
    """Decode PNG/JPEG/BMP/WebP/GIF (first frame) bytes into a grayscale image, 1.0 = white.

    Transparent pixels (drawing canvases) become background: strokes are laid on the colour they
    contrast with. 16-bit images keep their full range. Raises 415 for non-images and other formats,
    400 for corrupt or truncated files, 413 when width x height exceeds `max_pixels`.
    """
    if not data:
        raise UnsupportedImage("empty image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        if isinstance(exc, UnidentifiedImageError):
            raise UnsupportedImage("the data is not an image in a supported format") from exc
        raise PayloadTooLarge("image dimensions exceed the pixel limit", code="image_too_large") from exc
    except Exception as exc:  # Pillow raises many types on hostile headers
        raise CorruptImage(f"cannot read image: {exc}", code="corrupt_image") from exc
    if image.format not in SUPPORTED_FORMATS:
        raise UnsupportedImage(
            f"image format {image.format} is not supported; use PNG, JPEG, BMP, WebP or GIF",
            code="unsupported_image_format",
        )
    width, height = image.size
    _check_pixel_count(width, height, max_pixels)
    if width < 1 or height < 1:
        raise CorruptImage("image has no pixels", code="corrupt_image")
    try:
        image.seek(0)
        image.load()
        if image.format in ("JPEG", "WEBP"):
            image = ImageOps.exif_transpose(image)  # phone photos carry their rotation in EXIF
        return _to_gray(image)
    except (PayloadTooLarge, UnsupportedImage):
        raise
    except Exception as exc:
        raise CorruptImage(f"cannot decode image: {exc}", code="corrupt_image") from exc


def _check_pixel_count(width: int, height: int, max_pixels: int) -> None:
    """Checked on the header, before any pixel is decoded: the decompression-bomb guard."""
    if width * height > max_pixels:
        raise PayloadTooLarge(
            f"image is {width}x{height} pixels, over the limit of {max_pixels}", code="image_too_large"
        )


def _to_gray(image: Image.Image) -> np.ndarray:
    """Grayscale float32 in [0, 1] from any Pillow mode, flattening transparency onto a contrasting colour."""
    mode = image.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        values = np.asarray(image, dtype=np.float64)
        if mode == "F":
            top = max(1.0, float(np.nanmax(values))) if values.size else 1.0
        else:
            top = 65535.0 if mode.startswith("I;16") or values.max(initial=0) > 255 else 255.0
        return np.clip(np.nan_to_num(values / top), 0.0, 1.0).astype(np.float32)
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in image.info)
    target = "RGBA" if has_alpha else "L"
    return _pixels_to_gray(np.asarray(image if mode == target else image.convert(target)))


def _pixels_to_gray(pixels: np.ndarray) -> np.ndarray:
    """Grayscale float32 in [0, 1] from 8-bit gray or RGBA pixels.

    OpenCV's colour->gray uses the same ITU-R 601 weights as Pillow's "L", on integers and vectorised:
    a canvas upload is hundreds of thousands of pixels.
    """
    scale = np.float32(1 / np.iinfo(pixels.dtype).max)
    if pixels.ndim == 2:
        gray = pixels.astype(np.float32)
        gray *= scale
        return gray
    has_alpha = pixels.shape[2] == 4
    gray = cv2.cvtColor(pixels, cv2.COLOR_RGBA2GRAY if has_alpha else cv2.COLOR_RGB2GRAY).astype(np.float32)
    gray *= scale
    return _flatten_alpha(gray, pixels[..., 3], scale) if has_alpha else gray


def _flatten_alpha(gray: np.ndarray, alpha_channel: np.ndarray, scale: np.float32) -> np.ndarray:
    """Lay the opaque part of an image on the background its strokes contrast with, in place."""
    if alpha_channel.min() == np.iinfo(alpha_channel.dtype).max:
        return gray
    alpha = alpha_channel.astype(np.float32)
    alpha *= scale
    # Transparent background: the drawing is what is opaque. Lay it on white if the strokes are
    # dark, on black if they are light, so the strokes stay visible whatever colour they are.
    weight = float(alpha.sum())
    stroke_level = float(np.dot(gray.ravel(), alpha.ravel()) / weight) if weight > 0 else 0.0
    background = np.float32(1.0 if stroke_level < 0.5 else 0.0)
    # gray * alpha + background * (1 - alpha), in place
    gray -= background
    gray *= alpha
    gray += background
    return gray


def pixels_to_image(pixels: object) -> np.ndarray:
    """Validate a 28x28 nested list of numbers (0-255, or 0-1 when no value exceeds 1) into an image.

    The pixel convention is the model's: white digit on black; 28x28x1 is accepted too. The shape is
    checked on the lists before any array is built, so a wrong one costs nothing. Raises 422.
    """
    if not isinstance(pixels, list) or not pixels:
        raise Unprocessable("pixels must be a non-empty 2-D list of numbers", code="bad_pixels")
    if not _is_grid(pixels, IMAGE_HEIGHT, IMAGE_WIDTH):
        raise Unprocessable(
            f"pixels must be one {IMAGE_HEIGHT}x{IMAGE_WIDTH} array (rows of numbers)", code="bad_pixels"
        )
    array = np.array(pixels, dtype=object)
    if array.ndim == 3:
        array = array[:, :, 0]
    if not all(type(value) in (int, float) for value in array.flat):  # bool, str, None, lists are out
        raise Unprocessable("pixels must all be numbers", code="bad_pixels")
    try:
        values = array.astype(np.float64)
    except (OverflowError, ValueError, TypeError) as exc:
        raise Unprocessable("pixels must be in 0-255 (or 0-1)", code="bad_pixels") from exc
    if not np.isfinite(values).all():
        raise Unprocessable("pixels must be finite numbers (no NaN or Infinity)", code="bad_pixels")
    if values.min() < 0 or values.max() > 255:
        raise Unprocessable("pixels must be in 0-255 (or 0-1)", code="bad_pixels")
    scale = 1.0 if values.max() <= 1.0 else 255.0
    return (values / scale).astype(np.float32)


def _is_grid(pixels: list, height: int, width: int) -> bool:
    """`pixels` is `height` rows of `width` values, each a number or a one-number list (28x28x1)."""
    if len(pixels) != height:
        return False
    for row in pixels:
        if not isinstance(row, list) or len(row) != width:
            return False
        for value in row:
            if isinstance(value, list) and len(value) != 1:
                return False
    return True


def standard(gray: np.ndarray) -> np.ndarray:
    """The seed's preprocessing: resize to 28x28 and keep values in [0, 1], nothing else."""
    if gray.shape == (IMAGE_HEIGHT, IMAGE_WIDTH):
        return gray.astype(np.float32, copy=True)
    shrinking = gray.shape[0] >= IMAGE_HEIGHT and gray.shape[1] >= IMAGE_WIDTH
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(gray, (IMAGE_WIDTH, IMAGE_HEIGHT), interpolation=interpolation).astype(np.float32)


def enhanced(gray: np.ndarray) -> np.ndarray:
    """The MNIST recipe: polarity, denoise, soft threshold, crop, 20 px box, 28x28 pad, centre of mass.

    Raises NoDigitFound (422) when the image is empty or uniform.
    """
    image = _shrink(np.asarray(gray, dtype=np.float32))
    ink = _ink_map(image)
    mask = _digit_mask(ink)
    left, top, width, height = cv2.boundingRect(mask.astype(np.uint8))
    box = np.s_[top : top + height, left : left + width]
    crop = ink[box] * mask[box]
    digit = _fit_box(_normalise_stroke(crop))
    return _centre(digit)


def preprocess(gray: np.ndarray, mode: str) -> np.ndarray:
    """Apply the named preprocessing (`standard` or `enhanced`) to a decoded image."""
    if mode == "standard":
        return standard(gray)
    if mode == "enhanced":
        return enhanced(gray)
    raise ValueError(f"unknown preprocessing {mode!r}, not one of {PREPROCESSING_MODES}")


def _shrink(image: np.ndarray) -> np.ndarray:
    """Scale the longer side down to WORKING_SIDE_PX (area-averaging keeps thin strokes as grey)."""
    longer = max(image.shape)
    if longer <= WORKING_SIDE_PX:
        return image
    scale = WORKING_SIDE_PX / longer
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def _ink_map(image: np.ndarray) -> np.ndarray:
    """Ink intensity in [0, 1] (1 = full ink), whatever the polarity, background and contrast.

    Polarity comes from which side of the background level the extreme pixels lie: the ink is what
    differs most from the background, which is estimated from the image border.
    """
    smooth = image
    residual = np.abs(image - cv2.medianBlur(image, 3))
    # "The median residual exceeds NOISE_LEVEL", counted instead of sorted: a tenth of the time.
    if np.count_nonzero(residual > NOISE_LEVEL) * 2 > residual.size:
        # Noisy scan or photo: a median removes salt-and-pepper specks, a Gaussian the rest. Clean
        # images skip this, since blurring a small digit's 2 px strokes costs accuracy.
        smooth = cv2.medianBlur(image, 3)
        smooth = cv2.GaussianBlur(smooth, (0, 0), max(0.5, max(image.shape) / 150.0))
    border = np.concatenate([smooth[0], smooth[-1], smooth[:, 0], smooth[:, -1]])
    background = float(np.median(border))
    low, high = float(smooth.min()), float(smooth.max())
    dark_ink = (background - low) > (high - background)
    ink = (background - smooth) if dark_ink else (smooth - background)
    # Strongest ink level after the blur (a small digit in a big image is only a few pixels).
    contrast = float(ink.max())
    if contrast < MIN_CONTRAST:
        raise NoDigitFound("no digit found: the image is empty or uniform")
    return np.clip(ink / contrast, 0.0, 1.0)


def _digit_mask(ink: np.ndarray) -> np.ndarray:
    """Pixels that belong to the digit: Otsu threshold, then drop specks far smaller than the digit."""
    ink8 = (ink * 255).astype(np.uint8)
    otsu, binary = cv2.threshold(ink8, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    if count <= 1:
        raise NoDigitFound("no digit found: the image is empty or uniform")
    areas = stats[1:, cv2.CC_STAT_AREA]
    kept = np.zeros(count, bool)
    kept[1:] = areas >= MIN_BLOB_SHARE * areas.max()
    core = binary.astype(bool) if kept.sum() == count - 1 else kept[labels]
    # Keep the anti-aliased rim: grey pixels next to kept ink, above a quarter of the Otsu level.
    rim = cv2.dilate(core.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    return (core | (rim & (ink8 >= otsu / 4))).astype(np.float32)


def _normalise_stroke(crop: np.ndarray) -> np.ndarray:
    """Thicken hairlines and thin heavy strokes towards the MNIST stroke width, at the 20 px scale."""
    longer = max(crop.shape)
    # Work at 4x the final resolution so one morphology step is a quarter of a final pixel.
    scale = 4 * DIGIT_BOX_PX / longer
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    work = cv2.resize(crop, size, interpolation=interpolation)
    binary = (work >= 0.5).astype(np.uint8)
    area = int(binary.sum())
    if area == 0:
        return crop
    contours, _ = cv2.findContours(binary, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    perimeter = sum(cv2.arcLength(contour, True) for contour in contours)
    if perimeter <= 0:
        return crop
    width = area / (perimeter / 2) / 4  # stroke width in final pixels
    target = TARGET_STROKE_PX
    if width < 0.5 * target:
        radius = round((target - width) * 4 / 2)
        work = cv2.copyMakeBorder(work, radius, radius, radius, radius, cv2.BORDER_CONSTANT, value=0)
        return cv2.dilate(work, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1,) * 2))
    if width > 2.0 * target:
        radius = round((width - target) * 4 / 2)
        thinned = cv2.erode(work, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1,) * 2))
        if thinned.max() >= 0.5:  # never erode a digit away
            return thinned
    return crop  # already MNIST-like: no second resampling


def _fit_box(crop: np.ndarray) -> np.ndarray:
    """Scale so the longer side is DIGIT_BOX_PX, keeping the aspect ratio, and restretch to full ink."""
    height, width = crop.shape
    scale = DIGIT_BOX_PX / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    digit = cv2.resize(crop, size, interpolation=interpolation)
    top = float(digit.max())
    return digit / top if top > 0 else digit


def _centre(digit: np.ndarray) -> np.ndarray:
    """Place the digit on a black 28x28 canvas so its centre of mass lands on MNIST's (14, 14).

    Whole-pixel shifts, like MNIST: interpolating a sub-pixel shift would blur the strokes.
    """
    # NumPy, not cv2.moments: OpenCV reads an N x 2 array (a 1 drawn 2 px wide) as N points, not pixels.
    mass = float(digit.sum())
    if mass <= 0:
        raise NoDigitFound("no digit found: the image is empty or uniform")
    row_centre = float(digit.sum(axis=1) @ np.arange(digit.shape[0])) / mass
    col_centre = float(digit.sum(axis=0) @ np.arange(digit.shape[1])) / mass
    top = round(CENTRE_OF_MASS_PX - row_centre)
    left = round(CENTRE_OF_MASS_PX - col_centre)
    canvas = np.zeros((IMAGE_HEIGHT, IMAGE_WIDTH), np.float32)
    height, width = digit.shape
    # Clip where a lopsided digit would leave the canvas.
    src_top, src_left = max(0, -top), max(0, -left)
    dst_top, dst_left = max(0, top), max(0, left)
    rows = min(height - src_top, IMAGE_HEIGHT - dst_top)
    cols = min(width - src_left, IMAGE_WIDTH - dst_left)
    canvas[dst_top : dst_top + rows, dst_left : dst_left + cols] = digit[
        src_top : src_top + rows, src_left : src_left + cols
    ]
    return np.clip(canvas, 0.0, 1.0)


def to_png(image: np.ndarray) -> bytes:
    """Encode a [0, 1] grayscale image as PNG bytes (for return_processed)."""
    ok, encoded = cv2.imencode(".png", np.round(np.clip(image, 0, 1) * 255).astype(np.uint8))
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return encoded.tobytes()


def stack(images: Sequence[np.ndarray]) -> np.ndarray:
    """Stack 28x28 images into the model's [N, 28, 28, 1] float32 batch."""
    return np.stack(images).astype(np.float32)[..., np.newaxis]
