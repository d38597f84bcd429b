"""What a gradio_client caller sends the UI and reads back: canvas values and the digit shown."""

import re
from pathlib import Path

from gradio_client import handle_file

from tests.e2e.digit_strokes import render_digit_png


def shown_digit(digit_html: str) -> int | None:
    """The digit the page shows in large type (None for the placeholder)."""
    match = re.search(r'data-digit="(\d)"', digit_html)
    return int(match.group(1)) if match else None


def canvas_value(png_path: Path | None) -> dict:
    """A Sketchpad value as an API client sends it: one layer and its composite."""
    if png_path is None:
        return {"background": None, "layers": [], "composite": None}
    return {
        "background": None,
        "layers": [handle_file(str(png_path))],
        "composite": handle_file(str(png_path)),
    }


def drawn_digit(tmp_path: Path, digit: int) -> Path:
    """A PNG of `digit` drawn with the browser tests' strokes."""
    path = tmp_path / f"drawn_{digit}.png"
    path.write_bytes(render_digit_png(digit))
    return path
