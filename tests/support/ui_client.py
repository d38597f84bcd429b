"""What UI tests send and read back (canvas values, the digit shown), and the stack serving a given model."""

import re
from pathlib import Path

from gradio_client import handle_file

from contract.mnist import EXPLAIN_SIGNATURE_NAME
from tests.e2e.digit_strokes import render_digit_png, render_strokes_png
from tests.support.model_server import COMMITTED_MODEL_DIR
from tests.support.signature_models import newest_version_with


def shown_digit(digit_html: str) -> int | None:
    """The digit the page shows in large type (None for the placeholder or a "not a digit" verdict)."""
    match = re.search(r'data-digit="(\d)"', digit_html)
    return int(match.group(1)) if match else None


def best_guess(digit_html: str) -> int | None:
    """The small "best guess" shown under a "not a digit" verdict (None when there is no such verdict)."""
    match = re.search(r'data-best-guess="(\d)"', digit_html)
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


def drawn_strokes(tmp_path: Path, name: str, strokes) -> Path:
    """A PNG of any strokes (a star, ...) drawn like the browser tests draw."""
    path = tmp_path / f"drawn_{name}.png"
    path.write_bytes(render_strokes_png(strokes))
    return path


def judging_model_dir(base: Path = COMMITTED_MODEL_DIR) -> Path:
    """The newest version under models/mnist exported with the digit judgement and `explain` (issue 13).

    The export writes both at once (contract/mnist.py), so the explain signature marks such a version.
    """
    found = newest_version_with(EXPLAIN_SIGNATURE_NAME, base)
    if found is None:
        raise FileNotFoundError(
            f"no version under {base} has the {EXPLAIN_SIGNATURE_NAME!r} signature and digit judgement: "
            "export one with `make train`"
        )
    return found
