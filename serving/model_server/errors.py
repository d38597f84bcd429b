"""Errors carrying a TF Serving status code, mapped to gRPC codes and HTTP statuses like TF Serving."""

import grpc

# tensorflow_serving/model_servers/http_server.cc ToHTTPStatusCode().
_HTTP_STATUS = {
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
    grpc.StatusCode.UNAUTHENTICATED: 401,
}


class ServingError(Exception):
    """A failed request or load, with the status code TF Serving would report."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def http_status(self) -> int:
        """The HTTP status TF Serving's REST API answers for this code."""
        return _HTTP_STATUS.get(self.code, 500)

    @property
    def error_code_name(self) -> str:
        """The tensorflow.error.Code name (as in StatusProto), e.g. NOT_FOUND."""
        return self.code.name


def invalid_argument(message: str) -> ServingError:
    """INVALID_ARGUMENT (HTTP 400)."""
    return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)


def not_found(message: str) -> ServingError:
    """NOT_FOUND (HTTP 404)."""
    return ServingError(grpc.StatusCode.NOT_FOUND, message)


def failed_precondition(message: str) -> ServingError:
    """FAILED_PRECONDITION (HTTP 400)."""
    return ServingError(grpc.StatusCode.FAILED_PRECONDITION, message)
