"""Turn gateway replies and failures into what the Gradio page shows."""

import base64
import binascii
import html
import io
from dataclasses import dataclass

from PIL import Image

from ui.canvas import DEFAULT_MODEL_CHOICE
from ui.client import GatewayError, GatewayStatus, PredictResult

TOP_CLASSES = 3
EMPTY_CANVAS_MESSAGE = "The canvas is empty: draw a digit (0-9) first, then press **Predict**."
EMPTY_UPLOAD_MESSAGE = "Choose an image of a digit first, then press **Predict**."
NO_DIGIT_MESSAGE = "No digit found in that image: draw it larger or with a darker, thicker line."
UP_COLOUR, WARN_COLOUR, DOWN_COLOUR = "#16a34a", "#d97706", "#dc2626"
PLACEHOLDER_DIGIT_HTML = '<div class="digit-box"><div class="digit-big digit-empty">?</div></div>'


@dataclass(frozen=True)
class PredictionView:
    """Everything one prediction puts on the page, in the order of the Gradio outputs."""

    digit_html: str
    top_probabilities: dict[str, float] | None
    processed_image: Image.Image | None
    details: str
    message: str

    def as_outputs(self) -> tuple:
        """The values for (digit, probabilities, processed image, details, message)."""
        return self.digit_html, self.top_probabilities, self.processed_image, self.details, self.message


def digit_html(digit: int | None, confidence: float | None = None) -> str:
    """The predicted digit in large type; `data-digit` lets tests and scripts read it."""
    if digit is None:
        return PLACEHOLDER_DIGIT_HTML
    caption = "" if confidence is None else f'<div class="digit-caption">{confidence:.1%} sure</div>'
    return (
        f'<div class="digit-box"><div class="digit-big" data-digit="{int(digit)}">{int(digit)}</div>'
        f"{caption}</div>"
    )


def top_probabilities(probabilities: list[float], count: int = TOP_CLASSES) -> dict[str, float]:
    """The `count` most likely digits as {"7": 0.98, ...} for gr.Label."""
    ranked = sorted(enumerate(probabilities), key=lambda pair: pair[1], reverse=True)[:count]
    return {str(digit): float(probability) for digit, probability in ranked}


def decode_processed_image(encoded: str | None) -> Image.Image | None:
    """The base64 PNG the gateway returns with return_processed, or None if absent or unreadable."""
    if not encoded:
        return None
    if encoded.startswith("data:"):
        encoded = encoded.partition(",")[2]
    try:
        image = Image.open(io.BytesIO(base64.b64decode(encoded, validate=False)))
        image.load()
    except (binascii.Error, OSError, ValueError):
        return None
    return image


def details_markdown(reply: dict, round_trip_ms: float) -> str:
    """Model name, version, label, preprocessing and latency as one readable line."""
    model = reply.get("model") or {}
    label = f" (label `{model['label']}`)" if model.get("label") else ""
    timings = reply.get("timings_ms") or {}
    gateway_ms = timings.get("total")
    upstream_ms = timings.get("upstream")
    latency = f"round trip **{round_trip_ms:.0f} ms**"
    if gateway_ms is not None:
        latency += f" · gateway {float(gateway_ms):.1f} ms"
    if upstream_ms is not None:
        latency += f" (model server {float(upstream_ms):.1f} ms)"
    return (
        f"Model **{model.get('name', '?')}** version **{model.get('version', '?')}**{label} · "
        f"preprocessing `{reply.get('preprocessing', '?')}` · {latency}"
    )


def view_from_result(result: PredictResult) -> PredictionView:
    """What to show for a successful prediction."""
    reply = result.reply
    probabilities = reply.get("probabilities")
    if "digit" not in reply or not isinstance(probabilities, list):
        return view_from_message("The gateway sent a reply without a prediction. Try again.")
    return PredictionView(
        digit_html=digit_html(reply["digit"], reply.get("confidence")),
        top_probabilities=top_probabilities(probabilities),
        processed_image=decode_processed_image(reply.get("processed_image")),
        details=details_markdown(reply, result.round_trip_ms),
        message="",
    )


def view_from_message(message: str) -> PredictionView:
    """An empty result with a message, e.g. for an empty canvas."""
    return PredictionView(PLACEHOLDER_DIGIT_HTML, None, None, "", message)


def error_message(error: GatewayError) -> str:
    """A short, friendly explanation of a failed gateway call (no stack trace)."""
    if error.kind == "unreachable":
        return (
            f"The prediction service is down ({html.escape(error.message)}). "
            "Start it with `make up`, then try again; your drawing is kept."
        )
    if error.kind == "timeout":
        return f"The prediction service is slow: {html.escape(error.message)}. Try again in a moment."
    if error.code == "no_digit" or error.status == 422:
        return NO_DIGIT_MESSAGE
    if error.status in (503, 504):
        return (
            f"The model is not ready or too slow right now ({html.escape(error.message)}). "
            "Try again in a moment."
        )
    if error.status is not None and 400 <= error.status < 500:
        return f"The gateway refused the request: {html.escape(error.message)}"
    return f"The prediction service had a problem: {html.escape(error.message)}. Try again."


def view_from_error(error: GatewayError) -> PredictionView:
    """What to show when the gateway call failed."""
    return view_from_message(error_message(error))


def model_choices(models: dict | None) -> list[tuple[str, str]]:
    """Dropdown entries (shown text, value) from GET /v1/models: default routing, labels, versions."""
    choices = [("Default routing (stable, canary share)", DEFAULT_MODEL_CHOICE)]
    if not models:
        return choices
    for label, version in sorted((models.get("labels") or {}).items()):
        choices.append((f"label {label} → version {version}", f"label:{label}"))
    for entry in models.get("versions") or []:
        version = entry.get("version")
        if version is None:
            continue
        state = entry.get("state", "?")
        choices.append((f"version {version} ({state})", f"version:{version}"))
    return choices


def status_markdown(status: GatewayStatus, gateway_url: str) -> str:
    """One status line: is the gateway up, is the model ready, which versions are served."""
    if not status.live:
        return (
            f"{_dot(DOWN_COLOUR)} **Gateway down** at `{gateway_url}`: "
            "predictions are unavailable until it is back."
        )
    gateway = f"{_dot(UP_COLOUR)} Gateway up at `{gateway_url}`"
    if not status.ready:
        model = f"{_dot(WARN_COLOUR)} **model not ready**"
        if status.error:
            model += f" ({html.escape(status.error)})"
    else:
        model = f"{_dot(UP_COLOUR)} model ready"
    versions = ""
    if status.models:
        served = [
            f"v{entry.get('version')} {entry.get('state', '?')}"
            for entry in status.models.get("versions") or []
        ]
        label_map = status.models.get("labels") or {}
        labels = [f"{name}→v{version}" for name, version in sorted(label_map.items())]
        versions = f" · {status.models.get('model', 'mnist')}: {', '.join(served) or 'no versions'}"
        if labels:
            versions += f" ({', '.join(labels)})"
    return f"{gateway} · {model}{versions}"


def _dot(colour: str) -> str:
    """A coloured status dot (HTML inside Markdown; no emoji font needed)."""
    return f'<span style="color:{colour}">●</span>'
