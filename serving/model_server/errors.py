"""Errors carrying a TF Serving status code, mapped to gRPC codes and HTTP statuses like TF Serving."""

import grpc

from contract.status import http_status


class ServingError(Exception):
    """A failed request or load, with the status code TF Serving would report."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def http_status(self) -> int:
        """The HTTP status TF Serving's REST API answers for this code."""
        return http_status(self.code.name)

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
