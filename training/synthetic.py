"""Synthetic training images: non-digits for outlier exposure, printed and drawn digits for tuning.

Every image is rendered on a realistic canvas (112-448 px; ink on paper, light on dark, colours, or black
strokes on a transparent canvas like the UI's Sketchpad), encoded losslessly and passed through the
gateway's own `decode_image` and default preprocessing, so each 28x28 array is what the served model would
see. Images the gateway would refuse ("no digit found") are dropped and replaced, and so are non-digits
that came out as an upright bar (a 1). Output: float32 [n, 28, 28] in [0, 1], white on black,
deterministic given the seed. Cost: about 3 ms of one core per image, over half of it the gateway's own
decoding and preprocessing.

The held-out evaluation sets (tools/) must stay disjoint from these by construction: other generators,
other fonts (these use only the DejaVu family that matplotlib ships, pinned with it), other photos and
seeds outside this module's streams, and characters training/characters.py keeps out of training.
TRAINING_FONTS, TRAINING_PHOTOS, training_non_digit_chars() and SEED_BASE make that checkable.

    python -m training.synthetic --out DIR   # one contact sheet PNG per kind, and the generation time
"""

import argparse
import io
import math
import sys
import time
import unicodedata
from collections.abc import Callable
from concurrent.futures import Executor
from functools import cache
from pathlib import Path

import cv2
import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from contract.mnist import DEFAULT_PREPROCESSING, IMAGE_HEIGHT, IMAGE_WIDTH, NUM_CLASSES
from gateway.errors import NoDigitFound
from gateway.preprocess import decode_image, preprocess
from training.hanzi import load_medians

# Every random stream here is seeded by (SEED_BASE, stream, seed): evaluation sets use another base.
SEED_BASE = 1_300_013

_MPL_DATA = Path(matplotlib.get_data_path())
# matplotlib's own DejaVu copies rather than the system's: pinned with matplotlib, present in the training
# image, so the same seed renders the same pixels everywhere. The "Display" files hold only a few glyphs.
TRAINING_FONTS = tuple(
    str(_MPL_DATA / "fonts" / "ttf" / f"DejaVu{face}.ttf")
    for face in (
        "Sans",
        "Sans-Bold",
        "Sans-Oblique",
        "Sans-BoldOblique",
        "SansMono",
        "SansMono-Bold",
        "SansMono-Oblique",
        "SansMono-BoldOblique",
        "Serif",
        "Serif-Bold",
        "Serif-Italic",
        "Serif-BoldItalic",
    )
)
# The fonts a character's reference views come from, when judging whether it looks like a digit.
_REFERENCE_FONTS = tuple(
    path
    for path in TRAINING_FONTS
    if Path(path).stem in ("DejaVuSans", "DejaVuSans-Bold", "DejaVuSerif", "DejaVuSansMono")
)
# Two photos and a terrain map (an elevation grid, shown in map colours): faces, fabric, landscape texture.
TRAINING_PHOTOS = tuple(
    str(_MPL_DATA / "sample_data" / name)
    for name in ("grace_hopper.jpg", "Minduka_Present_Blue_Pack.png", "jacksboro_fault_dem.npz")
)
PHOTO_SHARES = (0.6, 0.15, 0.25)
# A glyph is a letter half the time and a symbol otherwise (there are many more symbols than letters), and
# of the letters this share are short "words": what someone typing a word instead of a digit sends.
LETTER_SHARE = 0.5
WORD_SHARE = 0.2

NON_DIGIT_SHARES = {
    "glyphs": 0.25,
    "fragments": 0.22,
    "scribbles": 0.15,
    "shapes": 0.17,
    "noise": 0.08,
    "photos": 0.13,
}
_STREAMS = {
    "shuffle": 0,
    "glyphs": 1,
    "scribbles": 2,
    "shapes": 3,
    "noise": 4,
    "photos": 5,
    "printed": 6,
    "drawn": 7,
    "fragments": 8,
}

MIN_CANVAS_PX, MAX_CANVAS_PX = 112, 448
# The UI's Sketchpad: a 448 px canvas and a 36 px pen (ui/app.py), i.e. a pen ~8 % of the canvas side.
# People also draw with other brushes and canvases, hence a range around it.
UI_CANVAS_PX = 448
PEN_SHARE_RANGE = (0.05, 0.11)
# A scribble stroke's length in multiples of its larger extent, at least.
SCRIBBLE_LENGTH_SHARE = 4.5
# Non-digits whose 28x28 ink is at most this wide for its length (principal axes) and near upright are
# dropped: a crop of a ribbon, a blob of noise or a stroke that came out as a bar is a 1 to anyone.
BAR_ELONGATION = 0.33
# Fragments: this many consecutive strokes of a Chinese character (training/hanzi.py), a radical-like part.
FRAGMENT_STROKES = (2, 4)
# A fragment is dropped when its 28x28 view correlates at least this much with a training digit's (its
# nearest of MNIST's training split): 99 % of MNIST validation digits have a training digit that close,
# so what is kept is farther from every digit than almost any digit is. And when it correlates at least
# HELD_OUT_LIKENESS_MAX with a held-out character's view (upright or turned 15 degrees): strokes make
# carets, arches and corners too, and `make trust` must measure shapes training never saw.
MNIST_LIKENESS_MAX = 0.7
HELD_OUT_LIKENESS_MAX = 0.65
FRAGMENT_CHUNK = 256  # fragments made, then filtered together (one matrix product against the digits)
# A generator that the gateway keeps refusing is a bug, not bad luck: give up after this many tries per image.
MAX_TRIES_PER_IMAGE = 20

# Ink styles: black strokes on a transparent canvas, dark ink on paper, light ink on dark, colours.
_GLYPH_STYLES = {"canvas": 0.3, "paper": 0.4, "dark": 0.2, "colour": 0.1}
_DRAWN_STYLES = {"canvas": 0.6, "paper": 0.25, "dark": 0.15}

Points = list[tuple[float, float]] | np.ndarray  # [k, 2] x, y in the unit square, y down
Strokes = list[Points]


def _rng(stream: str, seed: int) -> np.random.Generator:
    """The random stream `stream` for `seed`; disjoint from every other (SEED_BASE, stream) pair."""
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    return np.random.default_rng([SEED_BASE, _STREAMS[stream], seed])


def _pick(rng: np.random.Generator, shares: dict[str, float]) -> str:
    """A key of `shares`, drawn with those probabilities."""
    keys = list(shares)
    weights = np.array([shares[key] for key in keys])
    return keys[int(rng.choice(len(keys), p=weights / weights.sum()))]


def _canvas_side(rng: np.random.Generator) -> int:
    """A canvas side in px, log-uniform over MIN_CANVAS_PX-MAX_CANVAS_PX (small uploads are as common)."""
    return int(round(math.exp(rng.uniform(math.log(MIN_CANVAS_PX), math.log(MAX_CANVAS_PX)))))


def gateway_view(image: Image.Image) -> np.ndarray | None:
    """What the gateway makes of `image` by default (float32 28x28), or None when it finds no digit.

    Encoded losslessly in a format the gateway accepts: PNG when there is transparency to keep, else
    BMP (no compression to pay for; noise and photos barely compress anyway), by OpenCV, whose BMP
    writer is several times faster than Pillow's for 8-bit gray.
    """
    if image.mode == "RGBA":
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", compress_level=1)
        data = buffer.getvalue()
    else:
        pixels = np.asarray(image.convert("RGB") if image.mode not in ("L", "RGB") else image)
        ok, encoded = cv2.imencode(".bmp", pixels if pixels.ndim == 2 else pixels[..., ::-1])  # OpenCV is BGR
        if not ok:
            raise RuntimeError("BMP encoding failed")
        data = encoded.tobytes()
    gray = decode_image(data, max_pixels=image.width * image.height)
    try:
        return preprocess(gray, DEFAULT_PREPROCESSING)
    except NoDigitFound:
        return None


def sketchpad_image(mask: np.ndarray) -> Image.Image:
    """An ink mask as the UI's Sketchpad sends it: black strokes on a transparent RGBA canvas."""
    rgba = np.zeros((*mask.shape, 4), np.uint8)
    rgba[..., 3] = mask
    return Image.fromarray(rgba, "RGBA")


def _compose(mask: np.ndarray, rng: np.random.Generator, styles: dict[str, float]) -> Image.Image:
    """Lay an ink mask (uint8, 255 = full ink) on a background in a random style.

    The "canvas" style is the Sketchpad's transparent canvas, rendered as the black-on-white image the
    gateway reads it as (its PNG costs 10x more to encode and decode at 448 px);
    test_sketchpad_canvas_reads_as_black_on_white holds the gateway to that equivalence.
    """
    style = _pick(rng, styles)
    if style == "canvas":
        return Image.fromarray(255 - mask)
    if style == "colour":
        weights = np.array([0.299, 0.587, 0.114])
        while True:  # luminance contrast of at least 0.35, or the "ink" is invisible
            background, ink = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
            if abs(float(weights @ (background - ink))) >= 0.35:
                break
    else:
        paper = style == "paper"
        background = rng.uniform(0.72, 1.0) if paper else rng.uniform(0.0, 0.28)
        ink = rng.uniform(0.0, background - 0.45) if paper else rng.uniform(background + 0.45, 1.0)
    # background + (ink - background) * coverage, as a lookup table per channel: one pass over the mask
    coverage = np.arange(256)[:, None] / 255
    table = np.round(np.clip(background + (ink - background) * coverage, 0, 1) * 255).astype(np.uint8)
    if style == "colour":
        pixels = cv2.LUT(cv2.merge([mask] * 3), table[:, None, :])
    else:
        pixels = cv2.LUT(mask, table[:, 0])
    if style == "paper" and rng.random() < 0.3:  # a scan or photo of paper: sensor noise
        noise = rng.standard_normal(pixels.shape, dtype=np.float32) * np.float32(rng.uniform(2.5, 12.5))
        pixels = np.clip(pixels + noise, 0, 255).astype(np.uint8)
    return Image.fromarray(pixels)


# Sub-pixel precision for OpenCV's drawing: coordinates are fixed-point with this many fraction bits.
_SHIFT_BITS = 4


def _fixed(points: Points, side: int) -> np.ndarray:
    """Unit-square points as OpenCV fixed-point pixel coordinates."""
    return np.round(np.asarray(points) * side * (1 << _SHIFT_BITS)).astype(np.int32)


def draw_strokes(side: int, strokes: Strokes, width: int, closed: bool = False) -> np.ndarray:
    """A `side` px uint8 ink mask of pen strokes (unit-square points): round ends and joins, anti-aliased.

    OpenCV's thick lines are round-capped like a brush and anti-aliased like a browser canvas.
    """
    mask = np.zeros((side, side), np.uint8)
    curves = [_fixed(stroke, side) for stroke in strokes]
    cv2.polylines(mask, curves, closed, 255, width, cv2.LINE_AA, _SHIFT_BITS)
    return mask


def _fill(mask: np.ndarray, polygon: Points) -> np.ndarray:
    """Fill a polygon (unit-square points) into an ink mask, anti-aliased, in place."""
    cv2.fillPoly(mask, [_fixed(polygon, mask.shape[0])], 255, cv2.LINE_AA, _SHIFT_BITS)
    return mask


def _pen_width(rng: np.random.Generator, side: int) -> int:
    """A pen width in px for a canvas of `side` px."""
    return max(2, int(round(rng.uniform(*PEN_SHARE_RANGE) * side)))


# ---------------------------------------------------------------- geometry helpers (unit square, y down)


def _arc(
    cx: float, cy: float, rx: float, ry: float, start_deg: float, end_deg: float, points: int = 36
) -> Points:
    """Points along an ellipse arc; increasing angles run clockwise on screen."""
    angles = np.radians(np.linspace(start_deg, end_deg, points))
    return list(zip(cx + rx * np.cos(angles), cy + ry * np.sin(angles), strict=True))


def _line(*corners: tuple[float, float], per_segment: int = 8) -> Points:
    """A polyline through `corners`, densely sampled so a smooth warp bends it like a hand would."""
    points: Points = []
    for (x0, y0), (x1, y1) in zip(corners, corners[1:], strict=False):
        for t in np.linspace(0, 1, per_segment, endpoint=False):
            points.append((x0 + (x1 - x0) * t, y0 + (y1 - y0) * t))
    points.append(corners[-1])
    return points


def _spline(controls: np.ndarray, per_segment: int = 8) -> Points:
    """A Catmull-Rom curve through control points [k, 2]."""
    padded = np.vstack([controls[:1], controls, controls[-1:]])
    p0, p1, p2, p3 = (padded[i : i + len(controls) - 1, None, :] for i in range(4))
    t = np.linspace(0, 1, per_segment, endpoint=False)[None, :, None]
    curve = 0.5 * (
        2 * p1 + (p2 - p0) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2 + (3 * p1 - p0 - 3 * p2 + p3) * t**3
    )
    return [tuple(point) for point in np.vstack([curve.reshape(-1, 2), controls[-1:]])]


def _fit(strokes: Strokes, rng: np.random.Generator, fill_range: tuple[float, float]) -> Strokes:
    """Scale and move strokes so their larger side fills a random share of the canvas, at a random place."""
    arrays = [np.asarray(stroke, dtype=np.float64) for stroke in strokes]
    every = np.vstack(arrays)
    low, high = every.min(axis=0), every.max(axis=0)
    scale = rng.uniform(*fill_range) / max(float((high - low).max()), 1e-6)
    margin = 0.06
    room = np.maximum(margin, 1 - margin - (high - low) * scale)
    offset = np.array([rng.uniform(margin, room[0]), rng.uniform(margin, room[1])])
    return [(array - low) * scale + offset for array in arrays]


def _affine(strokes: Strokes, rng: np.random.Generator, max_rotation_deg: float, max_shear: float) -> Strokes:
    """Rotate, slant and stretch strokes about their centre."""
    angle = math.radians(rng.uniform(-max_rotation_deg, max_rotation_deg))
    shear = rng.uniform(-max_shear, max_shear)
    stretch = rng.uniform(0.8, 1.15)
    cos, sin = math.cos(angle), math.sin(angle)
    matrix = np.array([[cos, -sin], [sin, cos]]) @ np.array([[stretch, shear], [0, 1]])
    arrays = [np.asarray(stroke, dtype=np.float64) for stroke in strokes]
    centre = np.vstack(arrays).mean(axis=0)
    return [(array - centre) @ matrix.T + centre for array in arrays]


def _wobble(strokes: Strokes, rng: np.random.Generator, amplitude: float) -> Strokes:
    """A smooth random displacement field (low-frequency sines): the hand's unsteadiness, not noise."""
    frequencies = rng.uniform(1, 4, (3, 2)) * 2 * math.pi
    phases = rng.uniform(0, 2 * math.pi, (3, 2))
    weights = rng.uniform(-1, 1, (3, 2)) * amplitude / 3
    moved = []
    for stroke in strokes:
        array = np.asarray(stroke, dtype=np.float64)
        # x moves with y and y with x, so straight lines bend instead of stretching
        dx = (weights[:, 0] * np.sin(array[:, 1:2] * frequencies[:, 0] + phases[:, 0])).sum(axis=1)
        dy = (weights[:, 1] * np.sin(array[:, 0:1] * frequencies[:, 1] + phases[:, 1])).sum(axis=1)
        moved.append(array + np.stack([dx, dy], axis=1))
    return moved


def _render_strokes(
    rng: np.random.Generator, strokes: Strokes, side: int, styles: dict[str, float]
) -> Image.Image:
    """Strokes drawn with a random pen on a `side` px canvas in a random style."""
    return _compose(draw_strokes(side, strokes, _pen_width(rng, side)), rng, styles)


# ---------------------------------------------------------------------------------- glyph rendering


@cache
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    """A loaded font (fonts are reused across thousands of images)."""
    return ImageFont.truetype(path, size)


@cache
def _has_glyph(path: str, char: str) -> bool:
    """Whether the font draws `char` itself rather than its "missing glyph" box."""
    font = _font(path, 48)

    def pixels(text: str) -> bytes:
        image = Image.new("L", (96, 96), 0)
        ImageDraw.Draw(image).text((8, 8), text, font=font, fill=255)
        return image.tobytes()

    return pixels(char) != pixels("\ue000")  # a private-use code point: always the missing-glyph box


def _glyph_mask(
    rng: np.random.Generator, char: str, side: int, height_range: tuple[float, float], max_rotation_deg: float
) -> np.ndarray:
    """`char` in a random training font, weight, size, rotation and place on a `side` px ink mask."""
    fonts = [path for path in TRAINING_FONTS if _has_glyph(path, char)]
    path = fonts[int(rng.integers(len(fonts)))]
    size = max(8, int(side * rng.uniform(*height_range)))
    font = _font(path, size)
    stroke = int(rng.integers(0, max(1, size // 22) + 1))  # extra weight beyond the font's own
    left, top, right, bottom = font.getbbox(char, stroke_width=stroke)
    pad = 2 + stroke
    glyph = Image.new("L", (right - left + 2 * pad, bottom - top + 2 * pad), 0)
    ImageDraw.Draw(glyph).text(
        (pad - left, pad - top), char, font=font, fill=255, stroke_width=stroke, stroke_fill=255
    )
    glyph = glyph.rotate(
        rng.uniform(-max_rotation_deg, max_rotation_deg), Image.Resampling.BILINEAR, expand=True
    )
    limit = int(side * 0.94)
    if max(glyph.size) > limit:  # a wide glyph or a big rotation: keep it on the canvas
        factor = limit / max(glyph.size)
        glyph = glyph.resize((max(1, int(glyph.width * factor)), max(1, int(glyph.height * factor))))
    mask = Image.new("L", (side, side), 0)
    mask.paste(
        glyph, (int(rng.integers(0, side - glyph.width + 1)), int(rng.integers(0, side - glyph.height + 1)))
    )
    return np.asarray(mask)


# ------------------------------------------------------------------------------------ non-digit kinds


def _reference_views(char: str) -> list[np.ndarray]:
    """`char` upright and centred in each reference font that has it, as the gateway sees it (28x28)."""
    views = []
    for path in _REFERENCE_FONTS:
        if not _has_glyph(path, char):
            continue
        font = _font(path, 80)
        left, top, right, bottom = font.getbbox(char)
        mask = Image.new("L", (160, 160), 0)
        ImageDraw.Draw(mask).text(
            (80 - (left + right) / 2, 80 - (top + bottom) / 2), char, font=font, fill=255
        )
        view = gateway_view(sketchpad_image(np.asarray(mask)))
        if view is not None:
            views.append(view)
    return views


@cache
def training_non_digit_chars() -> tuple[str, str]:
    """(letters, symbols) training draws non-digit glyphs from: training/characters.py's, unlike any digit."""
    from training.characters import training_non_digit_chars as unlike_digits

    chars = unlike_digits(_reference_views)
    letters = "".join(ch for ch in chars if unicodedata.category(ch).startswith("L"))
    return letters, "".join(ch for ch in chars if ch not in letters)


def _glyph_image(rng: np.random.Generator) -> Image.Image:
    """A letter or symbol that resembles no digit, or a short word of letters."""
    letters, symbols = training_non_digit_chars()
    if rng.random() >= LETTER_SHARE:
        char = symbols[int(rng.integers(len(symbols)))]
    elif rng.random() < WORD_SHARE:
        char = "".join(letters[int(i)] for i in rng.integers(len(letters), size=rng.integers(2, 4)))
    else:
        char = letters[int(rng.integers(len(letters)))]
    side = _canvas_side(rng)
    return _compose(_glyph_mask(rng, char, side, (0.3, 0.9), 25), rng, _GLYPH_STYLES)


def _scribble_image(rng: np.random.Generator) -> Image.Image:
    """One to three tangled pen strokes; too long for their extent to be any digit's single stroke."""
    side = _canvas_side(rng)
    strokes: Strokes = []
    for _ in range(int(rng.integers(1, 4))):
        while True:
            controls = _scribble_controls(rng, int(rng.integers(8, 15)))
            points = np.asarray(_spline(controls))
            length = float(np.linalg.norm(np.diff(points, axis=0), axis=1).sum())
            extent = points.max(axis=0) - points.min(axis=0)
            # A 0 is ~2.5x its extent long, an 8 ~4x: a scribble is longer, and not thin like a 1.
            if length >= SCRIBBLE_LENGTH_SHARE * float(extent.max()) and extent.min() >= 0.35 * extent.max():
                break
        strokes.append(points)
    strokes = _fit(strokes, rng, (0.5, 0.88))
    if rng.random() < 0.5:  # the UI's pen tangles into a blob; a finer one keeps the lines apart
        return _render_strokes(rng, strokes, side, _DRAWN_STYLES)
    width = max(2, int(side * rng.uniform(0.015, 0.05)))
    return _compose(draw_strokes(side, strokes, width), rng, _DRAWN_STYLES)


def _scribble_controls(rng: np.random.Generator, count: int) -> np.ndarray:
    """Random points in the unit square, none turning back on the previous segment.

    A U-turn would retrace the stroke, which then looks like a plain line (a 1) however long the path.
    """
    points = [tuple(rng.uniform(0, 1, 2)), tuple(rng.uniform(0, 1, 2))]
    while len(points) < count:
        (x0, y0), (x1, y1) = points[-2:]
        x2, y2 = rng.uniform(0, 1, 2)
        before, after = (x1 - x0, y1 - y0), (x2 - x1, y2 - y1)
        norms = math.hypot(*before) * math.hypot(*after)
        if norms > 1e-6 and (before[0] * after[0] + before[1] * after[1]) / norms > -0.8:  # turns <= ~143 deg
            points.append((x2, y2))
    return np.array(points)


def _polygon(corners: int, rng: np.random.Generator, inner: float | None = None) -> Points:
    """A regular polygon or (with `inner`) star, around (0.5, 0.5) with radius 0.4, randomly turned."""
    turn = rng.uniform(0, 2 * math.pi)
    count = corners * (2 if inner else 1)
    points = []
    for i in range(count):
        radius = 0.4 * (inner if inner and i % 2 else 1.0)
        angle = turn + 2 * math.pi * i / count
        points.append((0.5 + radius * math.cos(angle), 0.5 + radius * math.sin(angle)))
    return points


def _heart(rng: np.random.Generator) -> Points:
    """The classic parametric heart."""
    t = np.linspace(0, 2 * math.pi, 60, endpoint=False)
    x = 16 * np.sin(t) ** 3
    y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
    return list(zip(0.5 + x / 40, 0.5 + y / 40, strict=True))


SHAPES = (
    "star",
    "triangle",
    "square",
    "cross",
    "heart",
    "spiral",
    "grid",
    "blob",
    "arrow",
    "smiley",
    "concentric",
)


# Shapes with nested lines (rings, cells, a face) and the widest pen that keeps their gaps open at any fill.
NESTED_SHAPES = ("spiral", "concentric", "grid", "smiley")
NESTED_PEN_SHARE = 0.02


def _shape(rng: np.random.Generator, kind: str) -> tuple[str, Strokes]:
    """A shape of `kind` as strokes, and whether it is drawn "closed", "filled", "open" or as a "smiley"."""
    hollow_or_filled = "filled" if rng.random() < 0.4 else "closed"
    if kind == "star":
        return hollow_or_filled, [_polygon(int(rng.integers(5, 9)), rng, inner=rng.uniform(0.35, 0.55))]
    if kind == "triangle":
        return hollow_or_filled, [_polygon(3, rng)]
    if kind == "square":
        width = rng.uniform(0.5, 0.8)
        height = width * rng.uniform(0.6, 1.4)
        return hollow_or_filled, [
            [
                (0.5 - width / 2, 0.5 - height / 2),
                (0.5 + width / 2, 0.5 - height / 2),
                (0.5 + width / 2, 0.5 + height / 2),
                (0.5 - width / 2, 0.5 + height / 2),
            ]
        ]
    if kind == "cross":
        if rng.random() < 0.5:
            return "open", [_line((0.15, 0.5), (0.85, 0.5)), _line((0.5, 0.15), (0.5, 0.85))]
        return "open", [_line((0.2, 0.2), (0.8, 0.8)), _line((0.8, 0.2), (0.2, 0.8))]
    if kind == "heart":
        return hollow_or_filled, [_heart(rng)]
    if kind == "spiral":
        # Fewer turns curl into a 6 or a 9; more do not resolve in a 20 px box (they fill into a disc).
        turns = rng.uniform(2.0, 2.75)
        t = np.linspace(0, turns * 2 * math.pi, int(40 * turns))
        radius = 0.05 + 0.35 * t / t[-1]
        direction = 1 if rng.random() < 0.5 else -1
        return "open", [
            list(zip(0.5 + radius * np.cos(direction * t), 0.5 + radius * np.sin(t), strict=True))
        ]
    if kind == "grid":
        rows, cols = int(rng.integers(2, 5)), int(rng.integers(2, 5))
        strokes = [_line((0.1, y), (0.9, y)) for y in np.linspace(0.1, 0.9, rows + 2)[1:-1]]
        strokes += [_line((x, 0.1), (x, 0.9)) for x in np.linspace(0.1, 0.9, cols + 2)[1:-1]]
        if rng.random() < 0.5:  # a closed grid of cells, not only a hash sign
            strokes += [_line((0.1, 0.1), (0.9, 0.1), (0.9, 0.9), (0.1, 0.9), (0.1, 0.1))]
        return "open", strokes
    if kind == "blob":  # filled only: a hollow lumpy loop would be a 0
        angles = np.linspace(0, 2 * math.pi, 48, endpoint=False)
        radius = 0.3 + sum(
            rng.uniform(-0.07, 0.07) * np.cos(k * angles + rng.uniform(0, 6)) for k in range(2, 6)
        )
        return "filled", [
            list(zip(0.5 + radius * np.cos(angles), 0.5 + radius * np.sin(angles), strict=True))
        ]
    if kind == "arrow":  # never near vertical: an upright arrow is a 1 with a flag
        angle = rng.uniform(-math.radians(40), math.radians(40)) + (math.pi if rng.random() < 0.5 else 0)
        tip = np.array([0.5 + 0.4 * math.cos(angle), 0.5 + 0.4 * math.sin(angle)])
        tail = np.array([0.5 - 0.4 * math.cos(angle), 0.5 - 0.4 * math.sin(angle)])
        spread = rng.uniform(0.4, 0.8)
        barbs = [tip - 0.22 * np.array([math.cos(angle + s), math.sin(angle + s)]) for s in (spread, -spread)]
        return "open", [_line(tuple(tail), tuple(tip)), _line(tuple(barbs[0]), tuple(tip), tuple(barbs[1]))]
    if kind == "smiley":
        mouth = _arc(0.5, 0.55, 0.2, rng.uniform(0.1, 0.18), 20, 160, points=20)
        # Big eyes: small dots would fall under the gateway's speck filter, leaving a 0 with a smile.
        eyes = [_arc(x, 0.36, 0.06, 0.075, 0, 360, points=16) for x in (0.35, 0.65)]
        return "smiley", [_arc(0.5, 0.5, 0.4, 0.4, 0, 360, points=60), mouth, *eyes]
    corners = int(rng.choice([3, 4, 5, 6]))  # concentric polygons
    rings = int(rng.integers(2, 5))
    base = _polygon(corners, rng)
    return "closed", [
        [(0.5 + (x - 0.5) * (k + 1) / rings, 0.5 + (y - 0.5) * (k + 1) / rings) for x, y in base]
        for k in range(rings)
    ]


def _shape_image(rng: np.random.Generator) -> Image.Image:
    """A star, triangle, square, cross, heart, spiral, grid, blob, arrow, smiley or nested polygons."""
    side = _canvas_side(rng)
    kind = SHAPES[int(rng.integers(len(SHAPES)))]
    how, strokes = _shape(rng, kind)
    strokes = _fit(_affine(strokes, rng, 8 if kind == "arrow" else 30, 0.2), rng, (0.45, 0.88))
    width = _pen_width(rng, side) if rng.random() < 0.6 else max(2, int(side * rng.uniform(0.01, 0.04)))
    if kind in NESTED_SHAPES:  # a thick pen would merge the rings into a disc or a ring: a 0
        width = min(width, max(2, int(side * NESTED_PEN_SHARE)))
    if how == "filled":
        mask = _fill(np.zeros((side, side), np.uint8), strokes[0])
    elif how == "smiley":
        mask = draw_strokes(side, strokes[:2], width)
        for eye in strokes[2:]:
            _fill(mask, eye)
    else:
        mask = draw_strokes(side, strokes, width, closed=how == "closed")
    return _compose(mask, rng, _GLYPH_STYLES)


def _noise_image(rng: np.random.Generator) -> Image.Image:
    """Uniform, Gaussian, salt-and-pepper or low-frequency blob noise over the whole canvas."""
    side = _canvas_side(rng)
    kind = rng.choice(["uniform", "gaussian", "salt_pepper", "blobs"])
    shape = (side, side)
    if kind == "uniform":
        pixels = rng.random(shape, dtype=np.float32)
    elif kind == "gaussian":
        mean, spread = rng.uniform(0.3, 0.7), rng.uniform(0.1, 0.3)
        pixels = rng.standard_normal(shape, dtype=np.float32) * np.float32(spread) + np.float32(mean)
    elif kind == "salt_pepper":
        pixels = np.full(shape, rng.uniform(0, 1), np.float32)
        hits = rng.random(shape, dtype=np.float32) < rng.uniform(0.02, 0.3)
        pixels[hits] = rng.integers(0, 2, int(hits.sum()))
    else:
        coarse = rng.uniform(0, 1, (int(rng.integers(3, 10)),) * 2)
        pixels = np.asarray(
            Image.fromarray((coarse * 255).astype(np.uint8)).resize(shape, Image.Resampling.BICUBIC)
        )
        grain = rng.standard_normal(shape, dtype=np.float32) * np.float32(rng.uniform(0, 0.08))
        pixels = pixels.astype(np.float32) / 255 + grain
    return Image.fromarray(np.round(np.clip(pixels, 0, 1) * 255).astype(np.uint8))


@cache
def _photo(path: str) -> Image.Image:
    """A training photo, decoded once; an elevation grid (.npz) becomes an RGB map in terrain colours."""
    if path.endswith(".npz"):
        with np.load(path) as grid:
            elevation = grid["elevation"].astype(np.float64)
        span = np.ptp(elevation) or 1.0
        colours = matplotlib.colormaps["gist_earth"]((elevation - elevation.min()) / span)[..., :3]
        return Image.fromarray((colours * 255).astype(np.uint8), "RGB")
    with Image.open(path) as image:
        return image.convert("RGBA" if image.mode in ("RGBA", "LA", "P") else "RGB")


def _photo_image(rng: np.random.Generator) -> Image.Image:
    """A random crop of a training photo, resized to a canvas, sometimes gray, flipped or re-exposed."""
    # The present's flat ribbons crop into bars and corners more often than the portrait does.
    photo = _photo(TRAINING_PHOTOS[int(rng.choice(len(TRAINING_PHOTOS), p=PHOTO_SHARES))])
    short = min(photo.size)
    crop_w = int(short * rng.uniform(0.3, 0.9))  # smaller crops of these photos are flat or a stripe
    crop_h = int(min(photo.height, crop_w * rng.uniform(0.75, 1.33)))
    left, top = (
        int(rng.integers(0, photo.width - crop_w + 1)),
        int(rng.integers(0, photo.height - crop_h + 1)),
    )
    # Near the photo's own resolution, as a crop of it would be uploaded, within the canvas sizes.
    side = int(np.clip(crop_w * rng.uniform(0.6, 1.5), MIN_CANVAS_PX // 2, MAX_CANVAS_PX))
    pixels = np.asarray(photo)[top : top + crop_h, left : left + crop_w]
    size = (side, max(1, int(side * crop_h / crop_w)))
    interpolation = cv2.INTER_AREA if side < crop_w else cv2.INTER_LINEAR
    crop = Image.fromarray(cv2.resize(pixels, size, interpolation=interpolation), photo.mode)
    if rng.random() < 0.5:
        crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if rng.random() < 0.3:
        crop = crop.convert("L")
    if rng.random() < 0.4:  # exposure and contrast of another camera
        pixels = np.asarray(crop).astype(np.float32)
        gain, shift = rng.uniform(0.6, 1.4), rng.uniform(-40, 40)
        colour = pixels[..., :3] if pixels.ndim == 3 else pixels
        colour[...] = np.clip(colour * gain + shift, 0, 255)
        crop = Image.fromarray(pixels.astype(np.uint8), crop.mode)
    return crop


def _fragment_image(rng: np.random.Generator) -> Image.Image:
    """A few consecutive strokes of a Chinese character, written with a wobbling pen on a canvas."""
    characters = load_medians()
    low, high = FRAGMENT_STROKES
    while True:
        strokes = characters[int(rng.integers(len(characters)))]
        if len(strokes) >= low:
            break
    count = int(rng.integers(low, min(high, len(strokes)) + 1))
    start = int(rng.integers(0, len(strokes) - count + 1))
    side = _canvas_side(rng)
    drawn = _wobble(list(strokes[start : start + count]), rng, rng.uniform(0.005, 0.02))
    drawn = _fit(_affine(drawn, rng, 12, 0.2), rng, (0.45, 0.88))
    if rng.random() < 0.5:
        return _render_strokes(rng, drawn, side, _DRAWN_STYLES)
    width = max(2, int(side * rng.uniform(0.015, 0.05)))
    return _compose(draw_strokes(side, drawn, width), rng, _DRAWN_STYLES)


def _unit_rows(views: np.ndarray) -> np.ndarray:
    """Each view flattened, centred and scaled to length 1: a dot product is then a correlation."""
    rows = views.reshape(len(views), -1).astype(np.float32)
    rows -= rows.mean(axis=1, keepdims=True)
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-6)


@cache
def training_digit_rows() -> np.ndarray:
    """MNIST's training digits past the validation split, as unit rows [784, n] (the likeness filter)."""
    from training.dataset import DEFAULT_DATA_DIR, load_mnist
    from training.train import DEFAULTS

    train, _ = load_mnist(DEFAULT_DATA_DIR)
    return np.ascontiguousarray(_unit_rows(train.images[DEFAULTS["validation_size"] :] / 255.0).T)


@cache
def held_out_rows() -> np.ndarray:
    """The held-out characters in the reference fonts, upright and turned 15 degrees, as unit rows."""
    from training.characters import HELD_OUT_LETTERS, HELD_OUT_SYMBOLS

    views = []
    for char in HELD_OUT_LETTERS + HELD_OUT_SYMBOLS:
        for view in _reference_views(char):
            for degrees in (-15, 0, 15):
                turn = cv2.getRotationMatrix2D(((IMAGE_WIDTH - 1) / 2, (IMAGE_HEIGHT - 1) / 2), degrees, 1.0)
                views.append(cv2.warpAffine(view, turn, (IMAGE_WIDTH, IMAGE_HEIGHT)))
    return np.ascontiguousarray(_unit_rows(np.array(views)).T)


def likeness(views: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Each view's highest correlation with the unit rows' images (float32 [n])."""
    return (_unit_rows(views) @ rows).max(axis=1)


def _fragments(n: int, seed: int) -> np.ndarray:
    """`n` fragment views, none like a training digit or a held-out character (float32 [n, 28, 28])."""
    rng = _rng("fragments", seed)
    kept: list[np.ndarray] = []
    made = 0
    while sum(len(part) for part in kept) < n:
        if made > MAX_TRIES_PER_IMAGE * (n + FRAGMENT_CHUNK):
            raise RuntimeError(f"the likeness filters kept too few fragments: {made} made")
        views = _collect(FRAGMENT_CHUNK, lambda: _fragment_image(rng), "fragments", keep=_not_a_bar)
        made += len(views)
        unlike = (likeness(views, training_digit_rows()) < MNIST_LIKENESS_MAX) & (
            likeness(views, held_out_rows()) < HELD_OUT_LIKENESS_MAX
        )
        kept.append(views[unlike])
    return np.concatenate(kept)[:n]


NON_DIGIT_GENERATORS: dict[str, Callable[[np.random.Generator], Image.Image]] = {
    "glyphs": _glyph_image,
    "fragments": _fragment_image,
    "scribbles": _scribble_image,
    "shapes": _shape_image,
    "noise": _noise_image,
    "photos": _photo_image,
}


# -------------------------------------------------------------------------- drawn-digit stroke templates


def _templates(digit: int, rng: np.random.Generator) -> Strokes:
    """One of a few handwriting styles of `digit`, with its proportions varied (unit square, y down)."""
    u = rng.uniform
    style = int(rng.integers(3))
    if digit == 0:
        rx, ry, start = u(0.15, 0.26), u(0.3, 0.38), u(-110, -70)
        return [_arc(0.5, 0.5, rx, ry, start, start + (360 + u(-15, 25)) * (1 if style else -1), points=60)]
    if digit == 1:
        top, bottom = u(0.1, 0.16), u(0.84, 0.9)
        if style == 0:
            return [_line((0.5, top), (0.5, bottom))]
        flag = [_line((u(0.34, 0.42), top + u(0.1, 0.18)), (0.52, top), (0.52, bottom))]
        return flag if style == 1 else [*flag, _line((u(0.34, 0.4), bottom), (u(0.64, 0.7), bottom))]
    if digit == 2:
        base_y = u(0.8, 0.88)
        top = _arc(0.5, u(0.3, 0.34), u(0.17, 0.22), u(0.15, 0.2), u(-175, -155), u(5, 35))
        if style == 2:  # a curved descent into the base line
            descent = _arc(0.78, base_y - 0.02, 0.46, 0.46, -105, -165, points=14)
            descent = [(x, y) for x, y in descent if x > 0.24]
            return [top + descent + _line((0.28, base_y), (u(0.7, 0.8), base_y - u(0, 0.04)))]
        return [top + _line((u(0.25, 0.32), base_y), (u(0.7, 0.8), base_y + u(-0.02, 0.02)))]
    if digit == 3:
        lower = _arc(0.48, u(0.63, 0.68), u(0.2, 0.25), u(0.17, 0.22), -100, u(140, 165))
        if style == 2:  # flat top
            return [_line((0.3, 0.14), (0.7, 0.14), (0.45, 0.42)) + lower]
        upper = _arc(0.48, u(0.29, 0.33), u(0.17, 0.21), u(0.14, 0.18), u(-170, -150), 90)
        return [upper + lower]
    if digit == 4:
        bar_y = u(0.56, 0.64)
        if style == 0:  # closed top
            return [_line((0.58, 0.12), (0.24, bar_y), (0.78, bar_y)), _line((0.62, 0.3), (0.62, 0.9))]
        return [_line((u(0.26, 0.34), 0.12), (0.26, bar_y), (0.78, bar_y)), _line((0.64, 0.14), (0.64, 0.9))]
    if digit == 5:
        belly = _arc(0.47, u(0.63, 0.67), u(0.19, 0.24), u(0.17, 0.22), -120, u(140, 160))
        stem = _line((0.34, 0.14), (0.31, 0.47))
        bar = _line((0.34, 0.14), (u(0.66, 0.76), u(0.11, 0.15)))
        if style == 0:
            return [stem + belly, bar]
        return [list(reversed(bar)) + stem + belly]
    if digit == 6:
        loop = _arc(0.5, u(0.65, 0.69), u(0.17, 0.21), u(0.17, 0.2), 180, -175)
        if style == 0:
            return [_arc(0.64, 0.56, 0.34, 0.44, -100, -180) + loop]
        return [_line((u(0.58, 0.66), 0.12), (0.36, 0.48)) + loop]
    if digit == 7:
        top_y, corner = u(0.13, 0.2), u(0.7, 0.78)
        foot = (u(0.38, 0.5), u(0.86, 0.9))
        if style == 2:  # curved diagonal
            body = [
                _line((0.26, top_y), (corner, top_y))
                + _arc(corner - 0.55, top_y, 0.55, foot[1] - top_y, 0, 60)[1:]
            ]
        else:
            body = [_line((0.26, top_y), (corner, top_y), foot)]
        if style == 1:  # the continental bar
            body.append(_line((0.4, 0.52), (0.68, 0.5)))
        return body
    if digit == 8:
        if style == 2:  # two stacked loops
            return [
                _arc(0.5, 0.3, u(0.13, 0.17), 0.16, -90, 270),
                _arc(0.5, 0.68, u(0.17, 0.21), 0.2, -90, 270),
            ]
        t = np.linspace(0, 2 * math.pi, 80)
        top_w, bottom_w = u(0.13, 0.18), u(0.17, 0.22)
        width = np.where(np.cos(t) > 0, top_w, bottom_w) * (1 if style else -1)
        return [list(zip(0.5 + width * np.sin(2 * t), 0.5 - 0.37 * np.cos(t), strict=True))]
    loop_cx, loop_cy, rx, ry = 0.5, u(0.3, 0.34), u(0.16, 0.2), u(0.15, 0.18)
    loop = _arc(loop_cx, loop_cy, rx, ry, -10, -375)
    stem_x = loop_cx + rx
    if style == 2:  # curved tail
        return [
            loop + _line((stem_x, loop_cy), (stem_x - 0.01, 0.66), (stem_x - 0.1, 0.86), (stem_x - 0.2, 0.88))
        ]
    return [loop + _line((stem_x, loop_cy), (stem_x - u(0, 0.08), u(0.84, 0.9)))]


def _drawn_digit_image(rng: np.random.Generator, digit: int) -> Image.Image:
    """`digit` drawn on a canvas with a pen, slanted, wobbled and placed like a person would."""
    side = UI_CANVAS_PX if rng.random() < 0.5 else _canvas_side(rng)
    strokes = _wobble(_templates(digit, rng), rng, rng.uniform(0.005, 0.025))
    strokes = _fit(_affine(strokes, rng, 10, 0.25), rng, (0.4, 0.85))
    return _render_strokes(rng, strokes, side, _DRAWN_STYLES)


def _printed_digit_image(rng: np.random.Generator, digit: int) -> Image.Image:
    """`digit` printed in a training font, weight and size, slightly turned, anywhere on the page."""
    side = _canvas_side(rng)
    return _compose(_glyph_mask(rng, str(digit), side, (0.3, 0.95), 8), rng, _GLYPH_STYLES)


# ---------------------------------------------------------------------------------------------- API


def is_upright_bar(view: np.ndarray) -> bool:
    """Whether a 28x28 view's ink is a bar within 45 degrees of upright: that is a 1, whatever drew it.

    Judged on the ink-weighted spread (principal axes), so faint specks beside the bar do not hide it.
    """
    moments = cv2.moments(np.asarray(view, np.float32))
    if moments["m00"] <= 0:
        return False
    var_x, var_y = moments["mu20"] / moments["m00"], moments["mu02"] / moments["m00"]
    cov_xy = moments["mu11"] / moments["m00"]
    half_gap = math.hypot((var_x - var_y) / 2, cov_xy)
    major, minor = (var_x + var_y) / 2 + half_gap, (var_x + var_y) / 2 - half_gap
    if major <= 0:
        return False
    # The long axis is within 45 degrees of vertical exactly when the ink spreads more in y than in x.
    return math.sqrt(max(minor, 0.0) / major) <= BAR_ELONGATION and var_y >= var_x


def _collect(
    count: int, make: Callable[[], Image.Image], what: str, keep: Callable[[np.ndarray], bool] | None = None
) -> np.ndarray:
    """`count` gateway views of images from `make`, skipping those the gateway would refuse or `keep` not."""
    images = np.empty((count, IMAGE_HEIGHT, IMAGE_WIDTH), np.float32)
    done = tries = 0
    while done < count:
        tries += 1
        if tries > MAX_TRIES_PER_IMAGE * count + MAX_TRIES_PER_IMAGE:
            raise RuntimeError(
                f"the gateway refused too many synthetic {what}: {done} of {count} after {tries}"
            )
        view = gateway_view(make())
        if view is not None and (keep is None or keep(view)):
            images[done] = view
            done += 1
    return images


def non_digit_kind(kind: str, n: int, seed: int) -> np.ndarray:
    """`n` non-digits of one kind of NON_DIGIT_SHARES, float32 [n, 28, 28]."""
    if kind == "fragments":
        return _fragments(n, seed)
    rng = _rng(kind, seed)
    generator = NON_DIGIT_GENERATORS[kind]
    return _collect(n, lambda: generator(rng), kind, keep=_not_a_bar)


def _not_a_bar(view: np.ndarray) -> bool:
    """A non-digit's keep test: an upright bar is a 1 whatever drew it."""
    return not is_upright_bar(view)


def _split(n: int, shares: dict[str, float]) -> dict[str, int]:
    """`n` split by `shares`, largest remainders first, summing to exactly `n`."""
    exact = {key: n * share / sum(shares.values()) for key, share in shares.items()}
    counts = {key: int(value) for key, value in exact.items()}
    for key in sorted(exact, key=lambda key: counts[key] - exact[key])[: n - sum(counts.values())]:
        counts[key] += 1
    return counts


def non_digits(n: int, seed: int, pool: Executor | None = None) -> np.ndarray:
    """`n` non-digits mixed by NON_DIGIT_SHARES, shuffled, float32 [n, 28, 28] in [0, 1].

    With a process `pool` the kinds are made in parallel; each kind has its own stream, so the images are
    the same either way.
    """
    counts = _split(n, NON_DIGIT_SHARES)
    if pool is None:
        parts = [non_digit_kind(kind, count, seed) for kind, count in counts.items()]
    else:
        futures = [pool.submit(non_digit_kind, kind, count, seed) for kind, count in counts.items()]
        parts = [future.result() for future in futures]
    images = np.concatenate(parts) if parts else np.empty((0, IMAGE_HEIGHT, IMAGE_WIDTH), np.float32)
    return images[_rng("shuffle", seed).permutation(n)]


def _digits(stream: str, n: int, seed: int, make: Callable[[np.random.Generator, int], Image.Image]):
    """Balanced labels (each digit n/10 times, +1 for the first n % 10 in shuffled order) and their images."""
    rng = _rng(stream, seed)
    labels = rng.permutation(np.arange(n) % NUM_CLASSES).astype(np.int64)
    images = np.empty((n, IMAGE_HEIGHT, IMAGE_WIDTH), np.float32)
    for i, label in enumerate(labels):
        images[i] = _collect(1, lambda label=label: make(rng, int(label)), f"{stream} digits")[0]
    return images, labels


def printed_digits(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`n` printed digits: (float32 [n, 28, 28] in [0, 1], int64 labels [n], balanced)."""
    return _digits("printed", n, seed, _printed_digit_image)


def drawn_digits(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`n` canvas-style drawn digits: (float32 [n, 28, 28] in [0, 1], int64 labels [n], balanced)."""
    return _digits("drawn", n, seed, _drawn_digit_image)


# ---------------------------------------------------------------------------------------------- CLI


def contact_sheet(images: np.ndarray, columns: int = 20, zoom: int = 3) -> Image.Image:
    """A grid of 28x28 images, each zoomed, one gray pixel line apart."""
    rows = max(1, math.ceil(len(images) / columns))
    cell = IMAGE_WIDTH * zoom + 2
    sheet = np.full((rows * cell, columns * cell), 96, np.uint8)
    for i, image in enumerate(images):
        row, col = divmod(i, columns)
        big = np.kron(np.round(image * 255).astype(np.uint8), np.ones((zoom, zoom), np.uint8))
        sheet[
            row * cell + 1 : row * cell + 1 + big.shape[0], col * cell + 1 : col * cell + 1 + big.shape[1]
        ] = big
    return Image.fromarray(sheet)


def _by_label(images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Images ordered so each contact-sheet row of a 10-per-digit sheet is one digit."""
    return images[np.argsort(labels, kind="stable")]


def main(argv: list[str] | None = None) -> int:
    """Write a contact sheet per kind into --out and print how long each kind took."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="directory for the contact sheet PNGs")
    parser.add_argument("--count", type=int, default=200, help="images per sheet (default 200)")
    parser.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error("--count must be >= 1")
    args.out.mkdir(parents=True, exist_ok=True)
    sheets: dict[str, np.ndarray] = {}
    for kind in NON_DIGIT_SHARES:
        start = time.perf_counter()
        sheets[f"non_digits_{kind}"] = non_digit_kind(kind, args.count, args.seed)
        print(f"{kind}: {args.count} in {time.perf_counter() - start:.2f} s")
    for name, generate in (("printed_digits", printed_digits), ("drawn_digits", drawn_digits)):
        start = time.perf_counter()
        sheets[name] = _by_label(*generate(args.count, args.seed))
        print(f"{name}: {args.count} in {time.perf_counter() - start:.2f} s")
    for name, images in sheets.items():
        columns = max(1, args.count // NUM_CLASSES) if name.endswith("_digits") else 20
        path = args.out / f"{name}.png"
        contact_sheet(images, columns=columns).save(path)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
