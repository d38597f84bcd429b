"""Turn gateway replies and failures into what the Gradio page shows."""

import base64
import binascii
import html
import io
from dataclasses import dataclass, replace

from PIL import Image

from contract.mnist import DIGIT_SCORE_CUT
from ui.canvas import DEFAULT_MODEL_CHOICE
from ui.client import GatewayError, GatewayStatus, PredictResult

TOP_CLASSES = 3
EMPTY_CANVAS_MESSAGE = "The canvas is empty: draw a digit (0-9) first, then press **Predict**."
EMPTY_UPLOAD_MESSAGE = "Choose an image of a digit first, then press **Predict**."
NO_DIGIT_MESSAGE = "No digit found in that image: draw it larger or with a darker, thicker line."
UP_COLOUR, WARN_COLOUR, DOWN_COLOUR = "#16a34a", "#d97706", "#dc2626"
PLACEHOLDER_DIGIT_HTML = '<div class="digit-box"><div class="digit-big digit-empty">?</div></div>'
NOT_A_DIGIT_HEADLINE = "This does not look like a digit"
NOT_A_DIGIT_HINT = "Draw a single digit (0-9), large and centred; the best guess is only the nearest digit."
EXPLAIN_CAPTION = (
    "Integrated gradients: red to yellow = pixels that pushed towards the answer, yellow the most"
)


@dataclass(frozen=True)
class PredictionView:
    """Everything one prediction puts on the page, in the order of the Gradio outputs."""

    digit_html: str
    top_probabilities: dict[str, float] | None
    processed_image: Image.Image | None
    details: str
    message: str
    explanation_image: Image.Image | None = None
    explanation_caption: str = ""

    def as_outputs(self) -> tuple:
        """The values for (digit, probabilities, processed image, details, message, heat-map, caption)."""
        return (
            self.digit_html,
            self.top_probabilities,
            self.processed_image,
            self.details,
            self.message,
            self.explanation_image,
            self.explanation_caption,
        )


def judgement(reply: dict) -> bool | None:
    """The model's own verdict: True or False from `is_digit`, None when the version gives none."""
    value = reply.get("is_digit")
    return value if isinstance(value, bool) else None


def digit_html(digit: int | None, confidence: float | None = None, is_digit: bool | None = None) -> str:
    """The answer in large type; `data-digit` (a digit) or `data-verdict` (not a digit) let tests read it.

    A drawing the model judges not to be a digit gets that as the headline and its best guess in small
    type, with no confidence: a probability over ten digits says nothing about a star.
    """
    if digit is None:
        return PLACEHOLDER_DIGIT_HTML
    digit = int(digit)
    if is_digit is False:
        return (
            f'<div class="digit-box"><div class="not-digit" data-verdict="not_a_digit">{NOT_A_DIGIT_HEADLINE}'
            f'</div><div class="digit-caption">best guess: <span data-best-guess="{digit}">{digit}</span>'
            "</div></div>"
        )
    caption = "" if confidence is None else f'<div class="digit-caption">{confidence:.1%} sure</div>'
    return f'<div class="digit-box"><div class="digit-big" data-digit="{digit}">{digit}</div>{caption}</div>'


def top_probabilities(probabilities: list[float], count: int = TOP_CLASSES) -> dict[str, float]:
    """The `count` most likely digits as {"7": 0.98, ...} for gr.Label."""
    ranked = sorted(enumerate(probabilities), key=lambda pair: pair[1], reverse=True)[:count]
    return {str(digit): float(probability) for digit, probability in ranked}


def decode_png(encoded: str | None) -> Image.Image | None:
    """A base64 PNG from the gateway (processed image, heat-map), or None if absent or unreadable."""
    if not isinstance(encoded, str) or not encoded:
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
        f"preprocessing `{reply.get('preprocessing', '?')}` · {judgement_markdown(reply)} · {latency}"
    )


def judgement_markdown(reply: dict) -> str:
    """The digit score and verdict, or plainly that this version gives no judgement."""
    verdict = judgement(reply)
    if verdict is None:
        return "no digit judgement (this model version has none)"
    score = reply.get("digit_score")
    score = f"{float(score):.2f}" if isinstance(score, (int, float)) else "?"
    relation, meaning = ("≥", "a digit") if verdict else ("<", "not a digit")
    return f"digit score **{score}** ({relation} {DIGIT_SCORE_CUT:g}: {meaning})"


def explanation_view(reply: dict) -> tuple[Image.Image | None, str]:
    """The heat-map and its caption from the reply's `explanation`, or why there is none."""
    explanation = reply.get("explanation")
    if not isinstance(explanation, dict):
        return None, "The gateway sent no explanation with this answer."
    heatmap = decode_png(explanation.get("heatmap_png"))
    if heatmap is None:
        return None, "The gateway's explanation had no readable heat-map."
    steps, baseline = explanation.get("steps"), explanation.get("baseline")
    how = f" ({steps} steps from a {baseline} image)" if steps and baseline else ""
    digit = explanation.get("digit", reply.get("digit"))
    return heatmap, f"Why **{digit}**? {EXPLAIN_CAPTION}{how}."


def view_from_result(result: PredictResult, explain: bool = False) -> PredictionView:
    """What to show for a successful prediction; `explain` says the heat-map was asked for."""
    reply = result.reply
    probabilities = reply.get("probabilities")
    if "digit" not in reply or not isinstance(probabilities, list):
        return view_from_message("The gateway sent a reply without a prediction. Try again.")
    verdict = judgement(reply)
    heatmap, caption = explanation_view(reply) if explain else (None, "")
    return PredictionView(
        digit_html=digit_html(reply["digit"], reply.get("confidence"), verdict),
        # gr.Label shows its top class as a headline: not for a drawing that is not a digit.
        top_probabilities=None if verdict is False else top_probabilities(probabilities),
        processed_image=decode_png(reply.get("processed_image")),
        details=details_markdown(reply, result.round_trip_ms),
        message=NOT_A_DIGIT_HINT if verdict is False else "",
        explanation_image=heatmap,
        explanation_caption=caption,
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


def without_explanation(view: PredictionView, error: GatewayError) -> PredictionView:
    """The answer, told plainly that the gateway could not explain it (e.g. an old model version)."""
    note = f"No explanation for this answer: {html.escape(error.message)}"
    message = f"{view.message}\n\n{note}" if view.message else note
    return replace(view, message=message, explanation_image=None, explanation_caption=note)


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
