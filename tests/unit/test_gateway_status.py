"""One mapping of TF Serving's error statuses to gateway errors, for gRPC codes and REST HTTP statuses."""

import json

import pytest

from contract.status import HTTP_STATUS_BY_GRPC_CODE
from gateway.client.rest_client import rest_error
from gateway.client.status import GRPC_CODE_BY_HTTP_STATUS, upstream_error
from gateway.errors import MissingSignature


@pytest.mark.parametrize("code", sorted(set(GRPC_CODE_BY_HTTP_STATUS.values()) - {"OK"}))
def test_rest_status_maps_like_the_grpc_code_it_came_from(code):
    body = json.dumps({"error": "something"})
    over_rest = rest_error(HTTP_STATUS_BY_GRPC_CODE[code], body, "predict")
    over_grpc = upstream_error(code, "something", "predict")
    assert (type(over_rest), over_rest.status, over_rest.code) == (
        type(over_grpc),
        over_grpc.status,
        over_grpc.code,
    )


@pytest.mark.parametrize(
    ("status", "message", "gateway_status", "gateway_code"),
    [
        (404, "Servable not found for request: Specific(mnist, 9)", 404, "unknown_version"),
        (400, "Unrecognized servable version label: nope", 404, "unknown_label"),
        (400, "Expects arg[0] to be float but string is provided", 502, "bad_upstream"),
        (429, "queue full", 503, "upstream_unavailable"),
        (503, "not ready", 503, "upstream_unavailable"),
        (504, "timed out", 504, "upstream_timeout"),
        (500, "boom", 502, "bad_upstream"),
        (418, "teapot", 502, "bad_upstream"),
    ],
)
def test_tf_serving_rest_errors(status, message, gateway_status, gateway_code):
    error = rest_error(status, json.dumps({"error": message}), "predict")
    assert (error.status, error.code) == (gateway_status, gateway_code)


def test_rest_error_body_that_is_not_json_is_kept_as_text():
    error = rest_error(500, "<html>proxy error</html>", "predict")
    assert error.status == 502 and "proxy error" in error.message


@pytest.mark.parametrize(
    ("code", "message"),
    [
        # gRPC Predict (predict_util.cc) and REST (json_tensor.cc), as TF Serving words them.
        ("FAILED_PRECONDITION", 'Serving signature key "explain" not found.'),
        ("INVALID_ARGUMENT", 'HTTP 400: Serving signature name: "explain" not found in signature def'),
    ],
)
def test_missing_signature_is_its_own_error_naming_the_signature(code, message):
    error = upstream_error(code, message, "explain")
    assert isinstance(error, MissingSignature) and error.signature == "explain"


def test_missing_signature_over_rest_is_recognised_from_the_reply():
    body = json.dumps({"error": 'Serving signature name: "explain" not found in signature def'})
    error = rest_error(400, body, "explain")
    assert isinstance(error, MissingSignature) and error.signature == "explain"


def test_a_missing_input_alias_is_not_a_missing_signature():
    error = upstream_error("INVALID_ARGUMENT", "input tensor alias not found in signature: x", "predict")
    assert not isinstance(error, MissingSignature) and error.status == 502
