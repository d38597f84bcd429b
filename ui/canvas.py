"""Turn a Sketchpad value (or an uploaded file) into the request the gateway expects; no preprocessing."""

import io
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from PIL import Image

from contract.mnist import DEFAULT_PREPROCESSING, PREPROCESSING_MODES
from ui.client import PredictRequest

DEFAULT_MODEL_CHOICE = "default"
# The gateway's query option that adds an `explanation` (one extra model call, so only when asked).
EXPLAIN_PARAM = "explain"
UPLOAD_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".bmp": "image/bmp",
    ".webp": "image/webp",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
}


def model_choice_params(choice: str | None) -> dict[str, str]:
    """Query options for a model dropdown value: "default", "label:<name>" or "version:<n>"."""
    if not choice or choice == DEFAULT_MODEL_CHOICE:
        return {}
    kind, _, value = choice.partition(":")
    if kind in ("label", "version") and value:
        return {kind: value}
    raise ValueError(f"unknown model choice {choice!r}")


def request_params(preprocessing: str, model_choice: str | None, explain: bool = False) -> dict[str, str]:
    """The query string for POST /v1/predict; always asks for the 28x28 image the model saw."""
    if preprocessing not in PREPROCESSING_MODES:
        raise ValueError(f"unknown preprocessing {preprocessing!r}")
    params = {"preprocessing": preprocessing, "return_processed": "true", **model_choice_params(model_choice)}
    if explain:
        params[EXPLAIN_PARAM] = "true"
    return params


def flatten_canvas(value: Mapping | np.ndarray | Image.Image | None) -> Image.Image | None:
    """The drawing as one RGBA image: the editor's composite, or background and layers stacked.

    The canvas is transparent where nothing was drawn (RGB is 0 there), so the alpha channel is kept:
    dropping it would turn the background black and hide black strokes.
    """
    if value is None:
        return None
    if not isinstance(value, Mapping):
        return _as_rgba(value)
    composite = _as_rgba(value.get("composite"))
    if composite is not None and not is_blank(composite):
        return composite
    parts = [_as_rgba(value.get("background")), *(_as_rgba(layer) for layer in value.get("layers") or [])]
    parts = [part for part in parts if part is not None]
    if not parts:
        return composite
    stacked = Image.new("RGBA", parts[0].size, (0, 0, 0, 0))
    for part in parts:
        if part.size != stacked.size:
            part = part.resize(stacked.size)
        stacked = Image.alpha_composite(stacked, part)
    return stacked


def is_blank(image: Image.Image) -> bool:
    """True when the image is one flat colour (nothing drawn), transparent or not."""
    extrema = image.convert("RGBA").getextrema()
    alpha_low, alpha_high = extrema[3]
    if alpha_high == 0:
        return True
    return all(low == high for low, high in extrema)


def canvas_to_request(
    value,
    preprocessing: str = DEFAULT_PREPROCESSING,
    model_choice: str | None = DEFAULT_MODEL_CHOICE,
    explain: bool = False,
) -> PredictRequest | None:
    """The gateway request for a Sketchpad value as a lossless RGBA PNG, or None for an empty canvas."""
    image = flatten_canvas(value)
    if image is None or is_blank(image):
        return None
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    params = request_params(preprocessing, model_choice, explain)
    return PredictRequest(image=buffer.getvalue(), params=params)


def upload_to_request(
    path: str | Path | None,
    preprocessing: str = DEFAULT_PREPROCESSING,
    model_choice: str | None = DEFAULT_MODEL_CHOICE,
    explain: bool = False,
) -> PredictRequest | None:
    """The gateway request for an uploaded file, sent byte for byte so the gateway decodes it."""
    if not path:
        return None
    path = Path(path)
    content_type = UPLOAD_TYPES.get(path.suffix.lower(), "application/octet-stream")
    return PredictRequest(
        image=path.read_bytes(),
        filename=path.name,
        content_type=content_type,
        params=request_params(preprocessing, model_choice, explain),
    )


def _as_rgba(image) -> Image.Image | None:
    """A numpy array, PIL image or file path as an RGBA PIL image."""
    if image is None:
        return None
    if isinstance(image, Image.Image):
        return image.convert("RGBA")
    if isinstance(image, (str, Path)):
        with Image.open(image) as opened:
            return opened.convert("RGBA")
    array = np.asarray(image)
    if array.dtype != np.uint8:
        array = np.clip(array, 0, 255).astype(np.uint8)
    return Image.fromarray(array).convert("RGBA")
