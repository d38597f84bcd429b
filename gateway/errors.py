"""Gateway errors and the handlers that turn every failure into a JSON error body."""

import logging

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class GatewayError(Exception):
    """An error with an HTTP status, a stable machine code and a human message."""

    status = 400
    code = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        details: dict | None = None,
    ):
        super().__init__(message)
        self.message = message
        # Machine-readable facts a client can act on (a version, a score), next to code and message.
        self.details = dict(details or {})
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status

    def to_dict(self) -> dict:
        """The JSON error body."""
        return {"error": {"code": self.code, "message": self.message, **self.details}}


class BadRequest(GatewayError):
    """Malformed request: bad JSON, missing field, bad option."""


class PayloadTooLarge(GatewayError):
    """Upload bytes, image pixels or batch size over the configured limit."""

    status, code = 413, "too_large"


class UnsupportedImage(GatewayError):
    """The bytes are not an image in a supported format."""

    status, code = 415, "not_an_image"


class Unprocessable(GatewayError):
    """Well-formed input the model cannot use: no digit found, bad pixel values."""

    status, code = 422, "unprocessable"


class NoDigitFound(Unprocessable):
    """The image is empty or uniform."""

    code = "no_digit"


class NotADigit(Unprocessable):
    """reject=true and the model judged the input not a digit (details: digit_score, best guess)."""

    code = "not_a_digit"


class NotFound(GatewayError):
    """Unknown model version or label."""

    status, code = 404, "not_found"


class Conflict(GatewayError):
    """The served model version cannot give what the request asked for (a judgement, an explanation)."""

    status, code = 409, "conflict"


class JudgementUnavailable(Conflict):
    """reject=true, but the version that answered has no digit_score/is_digit outputs."""

    code = "judgement_unavailable"


class ExplanationUnavailable(Conflict):
    """explain=true, but the version that answered has no explain signature."""

    code = "explanation_unavailable"


class BatchFailed(GatewayError):
    """Every image of a batch failed: the request is the client's error, with each item's error."""

    code = "batch_failed"

    def __init__(self, errors: list[GatewayError]):
        statuses = {error.status for error in errors}
        # One shared status says it best (all 415, all 422); mixed 4xx causes are a plain 400.
        status = statuses.pop() if len(statuses) == 1 else 400
        super().__init__(f"none of the {len(errors)} images could be used", status=status)
        self.errors = errors

    def to_dict(self) -> dict:
        """The JSON error body, with `results`: each item's error and status, in order."""
        return super().to_dict() | {
            "results": [error.to_dict() | {"status": error.status} for error in self.errors]
        }


class UpstreamError(GatewayError):
    """The model server answered with something the gateway cannot use."""

    status, code = 502, "bad_upstream"


class MissingSignature(UpstreamError):
    """The model server says the version has no signature of that name."""

    code = "signature_not_found"

    def __init__(self, message: str, *, signature: str):
        super().__init__(message)
        self.signature = signature


class UpstreamUnavailable(UpstreamError):
    """The model server cannot be reached or has no servable version."""

    status, code = 503, "upstream_unavailable"


class StorageUnavailable(GatewayError):
    """The feedback database cannot be reached or failed the write; nothing was stored."""

    status, code = 503, "storage_unavailable"


class UpstreamTimeout(UpstreamError):
    """The model server did not answer before the deadline."""

    status, code = 504, "upstream_timeout"


def error_response(error: GatewayError, retry_after_s: int):
    """A Flask response for `error`, with Retry-After on 503."""
    response = jsonify(error.to_dict())
    response.status_code = error.status
    if error.status == 503:
        response.headers["Retry-After"] = str(retry_after_s)
    return response


def register_error_handlers(app: Flask) -> None:
    """Map gateway errors, HTTP errors and anything unexpected to JSON bodies."""
    retry_after_s = app.config["GATEWAY"].retry_after_s

    @app.errorhandler(GatewayError)
    def _gateway_error(error: GatewayError):
        return error_response(error, retry_after_s)

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException):
        code = {413: "too_large", 404: "not_found", 405: "method_not_allowed"}.get(
            error.code or 500, (error.name or "error").lower().replace(" ", "_")
        )
        message = "request body is over the size limit" if error.code == 413 else error.description
        return error_response(
            GatewayError(message or error.name, code=code, status=error.code), retry_after_s
        )

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        # A bug, not bad input: log the traceback, answer without leaking it.
        log.exception("unhandled error")
        return error_response(GatewayError("internal error", code="internal", status=500), retry_after_s)
