"""Parse a correction's fields (label, predicted, version, preprocessing) from query, form or JSON."""

from dataclasses import dataclass

from flask import Request

from contract.mnist import NUM_CLASSES
from gateway.errors import BadRequest
from gateway.inputs import parse_preprocessing, parse_version, request_fields

FIELD_NAMES = ("label", "predicted", "version", "preprocessing")


@dataclass(frozen=True)
class CorrectionFields:
    """What the user says the digit is, and what the reply they saw said (all but `label` optional)."""

    label: int
    predicted: int | None
    version: int | None
    preprocessing: str


def correction_fields(request: Request, body: dict | None) -> CorrectionFields:
    """The validated fields: 400 missing_label without a label, 400 bad_option for a bad value."""
    raw = request_fields(request, body, FIELD_NAMES)
    if raw.get("label") in (None, ""):
        raise BadRequest(
            f"label is required: the digit the image shows, 0-{NUM_CLASSES - 1}", code="missing_label"
        )
    return CorrectionFields(
        label=_digit(raw["label"], "label"),
        predicted=None if raw.get("predicted") in (None, "") else _digit(raw["predicted"], "predicted"),
        version=parse_version(raw.get("version")),
        preprocessing=parse_preprocessing(raw.get("preprocessing")),
    )


def _digit(value: object, name: str) -> int:
    """A class index 0-9 given as an integer or its digits; bools, floats and other text are a 400."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < NUM_CLASSES:
        raise BadRequest(f"{name} must be an integer from 0 to {NUM_CLASSES - 1}", code="bad_option")
    return value
