"""One mapping from TF Serving's error statuses (gRPC code names) to the gateway's errors."""

import re

from contract.status import HTTP_STATUS_BY_GRPC_CODE
from gateway.errors import (
    GatewayError,
    MissingSignature,
    NotFound,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)

# TF Serving names a signature the version lacks in one of two ways: gRPC Predict answers
# FAILED_PRECONDITION 'Serving signature key "x" not found.' (predict_util.cc), REST answers
# INVALID_ARGUMENT 'Serving signature name: "x" not found in signature def' (json_tensor.cc).
MISSING_SIGNATURE = re.compile(r'serving signature (?:key|name):? "(?P<name>[^"]*)" not found', re.IGNORECASE)

# HTTP status -> gRPC code name, the inverse of TF Serving's REST mapping. Where several codes share an
# HTTP status the first listed wins (400 is INVALID_ARGUMENT, which is how an unknown label comes back).
GRPC_CODE_BY_HTTP_STATUS: dict[int, str] = {}
for _name, _status in HTTP_STATUS_BY_GRPC_CODE.items():
    GRPC_CODE_BY_HTTP_STATUS.setdefault(_status, _name)


def grpc_code_for_http(status: int) -> str:
    """The gRPC code name TF Serving's REST API turned into HTTP `status` (UNKNOWN when none)."""
    return GRPC_CODE_BY_HTTP_STATUS.get(status, "UNKNOWN")


def upstream_error(code: str, message: str, what: str) -> GatewayError:
    """The gateway error for a TF Serving error status `code` (a grpc.StatusCode name) and its message."""
    message = message[:500]
    missing = MISSING_SIGNATURE.search(message)
    if code in ("FAILED_PRECONDITION", "INVALID_ARGUMENT") and missing:
        return MissingSignature(f"model server: {message}", signature=missing.group("name"))
    if code == "UNAVAILABLE":
        return UpstreamUnavailable(f"model server unavailable: {message}")
    if code == "DEADLINE_EXCEEDED":
        return UpstreamTimeout(f"model server did not answer {what} in time")
    if code == "NOT_FOUND":
        return NotFound(f"model server: {message}", code="unknown_version")
    # TF Serving: InvalidArgument("Unrecognized servable version label: ...").
    if code == "INVALID_ARGUMENT" and "label" in message.lower():
        return NotFound(f"model server: {message}", code="unknown_label")
    if code in ("RESOURCE_EXHAUSTED", "FAILED_PRECONDITION"):
        return UpstreamUnavailable(f"model server busy or not ready: {message}")
    return UpstreamError(f"model server {what} failed: {code}: {message}")
