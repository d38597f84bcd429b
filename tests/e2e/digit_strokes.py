"""Hand-style pen strokes for test digits (and a star), in canvas fractions, drawn by a mouse or as PNG."""

import io
import math

from PIL import Image, ImageDraw

Point = tuple[float, float]
Strokes = list[list[Point]]  # each stroke is pen down ... pen up


def _arc(
    cx: float, cy: float, rx: float, ry: float, start_deg: float, end_deg: float, points: int = 40
) -> list[Point]:
    """Points along an ellipse arc (y grows downwards, like the screen)."""
    return [
        (
            cx + rx * math.cos(math.radians(start_deg + (end_deg - start_deg) * i / (points - 1))),
            cy + ry * math.sin(math.radians(start_deg + (end_deg - start_deg) * i / (points - 1))),
        )
        for i in range(points)
    ]


# Each digit is a list of strokes (pen down ... pen up); coordinates are fractions of the canvas side.
DIGIT_STROKES: dict[int, Strokes] = {
    0: [_arc(0.5, 0.5, 0.2, 0.32, -90, 280, points=60)],
    1: [[(0.47, 0.2), (0.53, 0.13), (0.53, 0.87)]],
    2: [_arc(0.5, 0.33, 0.19, 0.17, -170, 30) + [(0.3, 0.83), (0.74, 0.83)]],
    3: [_arc(0.48, 0.32, 0.19, 0.16, -160, 90) + _arc(0.48, 0.65, 0.22, 0.17, -90, 160)],
    4: [[(0.52, 0.14), (0.26, 0.6), (0.76, 0.6)], [(0.62, 0.34), (0.62, 0.88)]],
    7: [[(0.27, 0.18), (0.73, 0.18), (0.42, 0.86)]],
}


def _star(cx: float, cy: float, radius: float) -> list[Point]:
    """A five-pointed star in one pen stroke, as people draw it: every second tip, back to the first."""
    tips = [
        (
            cx + radius * math.cos(math.radians(-90 + 72 * k)),
            cy + radius * math.sin(math.radians(-90 + 72 * k)),
        )
        for k in range(5)
    ]
    return [tips[(2 * k) % 5] for k in range(6)]


# Not a digit: what a person testing "is that a digit?" draws first.
STAR_STROKES: Strokes = [_star(0.5, 0.54, 0.36)]

# Canvas side and pen width of the UI's Sketchpad (ui/app.py: 448 px canvas, radius 18 brush).
CANVAS_PX = 448
PEN_WIDTH_PX = 36


def render_digit_png(digit: int, size: int = CANVAS_PX, width: int = PEN_WIDTH_PX) -> bytes:
    """A digit's strokes as the Sketchpad stores them: black ink on a transparent RGBA canvas, as PNG."""
    return render_strokes_png(DIGIT_STROKES[digit], size, width)


def render_strokes_png(strokes: Strokes, size: int = CANVAS_PX, width: int = PEN_WIDTH_PX) -> bytes:
    """Any strokes as the Sketchpad stores them: black ink on a transparent RGBA canvas, as PNG."""
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    for stroke in strokes:
        draw.line([(x * size, y * size) for x, y in stroke], fill=(0, 0, 0, 255), width=width, joint="curve")
        for x, y in (stroke[0], stroke[-1]):  # round pen ends
            r = width / 2
            draw.ellipse([x * size - r, y * size - r, x * size + r, y * size + r], fill=(0, 0, 0, 255))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
