"""Corrections: which answer can be corrected, sending the right digit to the gateway, and what to say."""

import html
from dataclasses import dataclass

from contract.mnist import NUM_CLASSES
from ui.client import FeedbackRequest, GatewayClient, GatewayError, PredictRequest

CORRECTION_PROMPT = "Wrong? It is a …"
NOTHING_TO_CORRECT_MESSAGE = "No answer to correct yet: draw or upload a digit and press **Predict**."
# The gateway's 503 code when the feedback database cannot take the write (gateway/errors.py).
STORAGE_UNAVAILABLE = "storage_unavailable"


@dataclass(frozen=True)
class Correctable:
    """An answer the page shows: the image bytes sent for it and what its reply said."""

    image: bytes
    filename: str
    content_type: str
    predicted: int
    version: int | None
    preprocessing: str | None

    def feedback(self, label: int) -> FeedbackRequest:
        """The correction that says this image shows `label`."""
        return FeedbackRequest(
            image=self.image,
            label=label,
            filename=self.filename,
            content_type=self.content_type,
            predicted=self.predicted,
            version=self.version,
            preprocessing=self.preprocessing,
        )


def correctable(request: PredictRequest, reply: dict) -> Correctable | None:
    """The answer `reply` puts on the page for `request`, or None when the reply holds no digit."""
    digit = reply.get("digit")
    if not _is_digit(digit) or not isinstance(reply.get("probabilities"), list):
        return None
    model = reply.get("model")
    version = model.get("version") if isinstance(model, dict) else None
    preprocessing = reply.get("preprocessing")
    return Correctable(
        image=request.image,
        filename=request.filename,
        content_type=request.content_type,
        predicted=digit,
        version=version if _is_int(version) and version > 0 else None,
        preprocessing=preprocessing if isinstance(preprocessing, str) else None,
    )


def send_correction(
    client: GatewayClient, answer: Correctable | None, digit: object
) -> tuple[str, Correctable | None]:
    """Tell the gateway the answer shows `digit`: (what to tell the person, what is still correctable).

    A stored correction uses the answer up, so a second click cannot store a second, conflicting record;
    after a failure the answer stays correctable, so the person can try again.
    """
    if answer is None:
        return NOTHING_TO_CORRECT_MESSAGE, None
    label = parse_digit(digit)
    if label is None:
        return f"Pick a digit from 0 to {NUM_CLASSES - 1}.", answer
    try:
        record = client.feedback(answer.feedback(label))
    except GatewayError as error:
        return correction_error_message(error), answer
    if record.get("label") != label:
        return "The gateway's reply did not confirm the correction: it may not have been saved.", answer
    return thanks_message(record), None


def parse_digit(value: object) -> int | None:
    """A digit 0-9 from a button's text or an API client's number, else None."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    return value if _is_digit(value) else None


def thanks_message(record: dict) -> str:
    """The thanks for a stored correction, from the record the gateway stored."""
    said = record.get("predicted")
    model = f" (the model said {said})" if _is_digit(said) else ""
    return f"Thanks — saved as a **{record['label']}**{model}."


def correction_error_message(error: GatewayError) -> str:
    """Why a correction was not stored (or may not have been), and what to do; no stack trace."""
    message = html.escape(error.message)
    if error.kind == "unreachable":
        return f"Not saved: the gateway is not reachable ({message}). Try again once it is back."
    if error.kind == "timeout":
        return f"No answer from the gateway ({message}): the correction may not have been saved."
    if error.kind == "bad_reply":
        return f"The gateway's reply was unreadable ({message}): the correction may not have been saved."
    if error.code == STORAGE_UNAVAILABLE:
        return "Not saved: the feedback storage is unavailable right now. Please retry later."
    if error.status in (503, 504):
        return f"Not saved: the gateway is unavailable right now ({message}). Please retry later."
    if error.status is not None and 400 <= error.status < 500:
        return f"Not saved: the gateway refused the correction: {message}"
    return f"Not saved: the gateway had a problem ({message}). Please retry later."


def _is_int(value: object) -> bool:
    """An int that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def _is_digit(value: object) -> bool:
    """A class index 0-9."""
    return _is_int(value) and 0 <= value < NUM_CLASSES
