"""gRPC status codes by name and the HTTP status TF Serving's REST API answers for each."""

# tensorflow_serving/model_servers/http_server.cc ToHTTPStatusCode(); codes are grpc.StatusCode names so
# this module needs no grpcio (the UI and tools read it too).
HTTP_STATUS_BY_GRPC_CODE = {
    "OK": 200,
    "CANCELLED": 499,
    "UNKNOWN": 500,
    "INVALID_ARGUMENT": 400,
    "DEADLINE_EXCEEDED": 504,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "PERMISSION_DENIED": 403,
    "RESOURCE_EXHAUSTED": 429,
    "FAILED_PRECONDITION": 400,
    "ABORTED": 409,
    "OUT_OF_RANGE": 400,
    "UNIMPLEMENTED": 501,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
    "DATA_LOSS": 500,
    "UNAUTHENTICATED": 401,
}


def http_status(grpc_code_name: str) -> int:
    """The HTTP status TF Serving's REST API gives a gRPC status (500 for one it does not know)."""
    return HTTP_STATUS_BY_GRPC_CODE.get(grpc_code_name, 500)
