"""The local model server's REST and gRPC APIs against a real exported SavedModel, as TF Serving answers."""

import json
import urllib.error
import urllib.request

import grpc
import numpy as np
import pytest
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from tests.support.model_server import (
    copy_model,
    default_model_version_dir,
    official_predict_request,
    start_model_server,
    write_model_config,
)

RNG = np.random.default_rng(7)
IMAGES = RNG.random((3, 28, 28, 1), dtype=np.float32)


@pytest.fixture(scope="module")
def server(tmp_path_factory, repo_root):
    root = tmp_path_factory.mktemp("api")
    base = root / "models" / "mnist"
    copy_model(default_model_version_dir(), base, 1)
    copy_model(default_model_version_dir(), base, 2)
    config = write_model_config(
        root / "models.config", base, policy="all {}", labels={"stable": 1, "canary": 2}
    )
    running = start_model_server(
        root,
        model_config_file=config,
        extra_flags=[
            "--allow_version_labels_for_unavailable_models=true",
            f"--monitoring_config_file={repo_root / 'serving' / 'monitoring.config'}",
            "--file_system_poll_wait_seconds=1",
            "--unknown_flag_for_test=1",
        ],
    )
    yield running
    running.stop()


@pytest.fixture(scope="module")
def channel(server):
    with grpc.insecure_channel(server.grpc_target) as chan:
        yield chan


@pytest.fixture(scope="module")
def prediction_stub(channel):
    return prediction_service_pb2_grpc.PredictionServiceStub(channel)


@pytest.fixture(scope="module")
def model_stub(channel):
    return model_service_pb2_grpc.ModelServiceStub(channel)


def http(server, method: str, path: str, body: bytes | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(
        server.rest_url + path, data=body, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def assert_valid_prediction(digit: int, probabilities) -> None:
    probabilities = np.asarray(probabilities)
    assert probabilities.shape == (10,)
    assert abs(probabilities.sum() - 1.0) < 1e-3
    assert digit == int(np.argmax(probabilities))


# ---------------------------------------------------------------- REST


def test_rest_status_lists_versions_newest_first(server):
    status, body = http(server, "GET", "/v1/models/mnist")
    assert status == 200
    assert body == {
        "model_version_status": [
            {"version": "2", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}},
            {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}},
        ]
    }


def test_rest_status_of_one_version(server):
    status, body = http(server, "GET", "/v1/models/mnist/versions/1")
    assert status == 200 and [v["version"] for v in body["model_version_status"]] == ["1"]


@pytest.mark.parametrize(
    ("path", "version"),
    [
        ("/v1/models/mnist/metadata", "2"),
        ("/v1/models/mnist/versions/1/metadata", "1"),
        ("/v1/models/mnist/labels/stable/metadata", "1"),
        ("/v1/models/mnist/labels/canary/metadata", "2"),
    ],
)
def test_rest_metadata_reports_resolved_version_and_signature(server, path, version):
    status, body = http(server, "GET", path)
    assert status == 200
    assert body["model_spec"] == {"name": "mnist", "signature_name": "", "version": version}
    signature = body["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert signature["inputs"]["image"]["dtype"] == "DT_FLOAT"
    assert [d["size"] for d in signature["inputs"]["image"]["tensor_shape"]["dim"]] == ["-1", "28", "28", "1"]
    assert set(signature["outputs"]) == {"probabilities", "digit"}
    assert signature["method_name"] == "tensorflow/serving/predict"


def test_rest_predict_row_format(server):
    body = json.dumps({"instances": IMAGES.tolist()}).encode()
    status, reply = http(server, "POST", "/v1/models/mnist:predict", body)
    assert status == 200
    assert len(reply["predictions"]) == 3
    for row in reply["predictions"]:
        assert_valid_prediction(row["digit"], row["probabilities"])


def test_rest_predict_columnar_format_with_signature_name(server):
    body = json.dumps(
        {"signature_name": "serving_default", "inputs": {"image": IMAGES[:2].tolist()}}
    ).encode()
    status, reply = http(server, "POST", "/v1/models/mnist/versions/1:predict", body)
    assert status == 200
    outputs = reply["outputs"]
    assert len(outputs["digit"]) == 2 and np.asarray(outputs["probabilities"]).shape == (2, 10)


def test_rest_predict_by_label_matches_grpc(server, prediction_stub):
    body = json.dumps({"instances": IMAGES[:1].tolist()}).encode()
    status, reply = http(server, "POST", "/v1/models/mnist/labels/stable:predict", body)
    assert status == 200
    grpc_reply = prediction_stub.Predict(official_predict_request(IMAGES[:1], label="stable"), timeout=30)
    np.testing.assert_allclose(
        reply["predictions"][0]["probabilities"], grpc_reply.outputs["probabilities"].float_val, rtol=1e-5
    )


IMAGE_JSON = json.dumps({"instances": IMAGES[:1].tolist()}).encode()


@pytest.mark.parametrize(
    ("method", "path", "body", "code", "message"),
    [
        ("POST", "/v1/models/foo:predict", IMAGE_JSON, 404, "Servable not found for request: Latest(foo)"),
        (
            "POST",
            "/v1/models/mnist/versions/9:predict",
            IMAGE_JSON,
            404,
            "Servable not found for request: Specific(mnist, 9)",
        ),
        (
            "POST",
            "/v1/models/mnist/labels/nope:predict",
            IMAGE_JSON,
            400,
            "Unrecognized servable version label: nope",
        ),
        ("POST", "/v1/models/mnist:predict", b"{bad json", 400, "JSON Parse error"),
        ("POST", "/v1/models/mnist:predict", b"", 400, "JSON Parse error: The document is empty"),
        (
            "POST",
            "/v1/models/mnist:predict",
            b'{"instances": [[["x"]]]}',
            400,
            "is not of expected type: float",
        ),
        (
            "POST",
            "/v1/models/mnist:predict",
            b'{"instances": [[[[true]]]]}',
            400,
            "JSON Value: true Type: True is not of expected type: float",
        ),
        (
            "POST",
            "/v1/models/mnist:predict",
            b'{"instances": [[1, 2]]}',
            400,
            "incompatible with the signature",
        ),
        (
            "POST",
            "/v1/models/mnist:predict",
            b'{"signature_name": "nope", "instances": [1]}',
            400,
            'Serving signature name: "nope" not found in signature def',
        ),
        ("POST", "/v1/models/mnist:predict", b'{"image": [1]}', 400, "Missing 'inputs' or 'instances' key"),
        ("GET", "/v1/models/foo", None, 404, "Could not find any versions of model foo"),
        ("GET", "/v1/models/mnist/versions/9", None, 404, "Could not find version 9 of model mnist"),
        ("GET", "/v1/models/foo/metadata", None, 404, "Servable not found for request: Latest(foo)"),
        (
            "GET",
            "/v1/models/mnist/labels/nope/metadata",
            None,
            400,
            "Unrecognized servable version label: nope",
        ),
        ("GET", "/v1/models", None, 400, "Missing model name in request."),
        ("POST", "/v1/models/mnist:explode", b"{}", 400, "Malformed request: POST /v1/models/mnist:explode"),
    ],
)
def test_rest_errors_match_tf_serving(server, method, path, body, code, message):
    status, reply = http(server, method, path, body)
    assert status == code
    assert set(reply) == {"error"}
    assert message in reply["error"]


def test_rest_server_keeps_serving_after_errors(server):
    for _ in range(3):
        http(server, "POST", "/v1/models/mnist:predict", b"{bad")
    status, _ = http(server, "POST", "/v1/models/mnist:predict", IMAGE_JSON)
    assert status == 200


# ---------------------------------------------------------------- gRPC


def test_grpc_predict_returns_typed_fields_and_version(prediction_stub):
    reply = prediction_stub.Predict(official_predict_request(IMAGES), timeout=30)
    assert reply.model_spec.name == "mnist"
    assert reply.model_spec.version.value == 2
    assert reply.model_spec.signature_name == "serving_default"
    probabilities = reply.outputs["probabilities"]
    assert probabilities.dtype == types_pb2.DT_FLOAT and not probabilities.tensor_content
    assert [d.size for d in probabilities.tensor_shape.dim] == [3, 10]
    digits = reply.outputs["digit"]
    assert digits.dtype == types_pb2.DT_INT64 and len(digits.int64_val) == 3
    probs = np.asarray(probabilities.float_val).reshape(3, 10)
    for digit, row in zip(digits.int64_val, probs, strict=True):
        assert_valid_prediction(digit, row)


def test_grpc_predict_accepts_tensor_content(prediction_stub):
    request = official_predict_request(IMAGES[:1], version=1)
    proto = request.inputs["image"]
    del proto.float_val[:]
    proto.tensor_content = IMAGES[:1].tobytes()
    reply = prediction_stub.Predict(request, timeout=30)
    assert reply.model_spec.version.value == 1 and len(reply.outputs["digit"].int64_val) == 1


def test_grpc_predict_output_filter(prediction_stub):
    request = official_predict_request(IMAGES[:1])
    request.output_filter.append("digit")
    reply = prediction_stub.Predict(request, timeout=30)
    assert set(reply.outputs) == {"digit"}


@pytest.mark.parametrize(("label", "version"), [("stable", 1), ("canary", 2)])
def test_grpc_metadata_resolves_label_to_version(prediction_stub, label, version):
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = "mnist"
    request.model_spec.version_label = label
    reply = prediction_stub.GetModelMetadata(request, timeout=30)
    assert reply.model_spec.version.value == version
    packed = reply.metadata["signature_def"]
    assert packed.type_url == "type.googleapis.com/tensorflow.serving.SignatureDefMap"
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    packed.Unpack(signature_map)
    assert signature_map.signature_def["serving_default"].inputs["image"].dtype == types_pb2.DT_FLOAT


def test_grpc_status(model_stub):
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "mnist"
    reply = model_stub.GetModelStatus(request, timeout=30)
    states = [
        (s.version, get_model_status_pb2.ModelVersionStatus.State.Name(s.state))
        for s in reply.model_version_status
    ]
    assert states == [(2, "AVAILABLE"), (1, "AVAILABLE")]


def _int64_image_request() -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "mnist"
    request.inputs["image"].CopyFrom(tensor_pb2.TensorProto(dtype=types_pb2.DT_INT64, int64_val=[0] * 784))
    for size in (1, 28, 28, 1):
        request.inputs["image"].tensor_shape.dim.add().size = size
    return request


@pytest.mark.parametrize(
    ("make_request", "code", "message"),
    [
        (
            lambda: official_predict_request(IMAGES[:1], name="foo"),
            grpc.StatusCode.NOT_FOUND,
            "Servable not found",
        ),
        (
            lambda: official_predict_request(IMAGES[:1], version=9),
            grpc.StatusCode.NOT_FOUND,
            "Servable not found for request: Specific(mnist, 9)",
        ),
        (
            lambda: official_predict_request(IMAGES[:1], label="nope"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "Unrecognized servable version label: nope",
        ),
        (
            _int64_image_request,
            grpc.StatusCode.INVALID_ARGUMENT,
            "Expects arg[0] to be float but int64 is provided",
        ),
        (lambda: predict_pb2.PredictRequest(), grpc.StatusCode.INVALID_ARGUMENT, "Missing ModelSpec"),
    ],
)
def test_grpc_predict_errors_match_tf_serving(prediction_stub, make_request, code, message):
    with pytest.raises(grpc.RpcError) as info:
        prediction_stub.Predict(make_request(), timeout=30)
    assert info.value.code() == code
    assert message in info.value.details()


def test_grpc_status_of_unknown_model_is_not_found(model_stub):
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "foo"
    with pytest.raises(grpc.RpcError) as info:
        model_stub.GetModelStatus(request, timeout=30)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert info.value.details() == "Could not find any versions of model foo"


def test_grpc_metadata_needs_signature_def_field(prediction_stub):
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = "mnist"
    with pytest.raises(grpc.RpcError) as info:
        prediction_stub.GetModelMetadata(request, timeout=30)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


# ---------------------------------------------------------------- metrics and logs


def test_prometheus_metrics_count_requests_by_status(server):
    http(server, "POST", "/v1/models/mnist:predict", IMAGE_JSON)
    http(server, "POST", "/v1/models/foo:predict", IMAGE_JSON)
    with urllib.request.urlopen(server.rest_url + "/monitoring/prometheus/metrics", timeout=10) as response:
        page = response.read().decode()
    assert ':tensorflow:serving:request_count{entrypoint="REST",model_name="mnist",status="OK"}' in page
    assert 'status="NOT_FOUND"' in page
    assert ":tensorflow:serving:request_latency_bucket{" in page


def test_log_says_what_loaded_and_warns_about_unknown_flags(server):
    log = server.process.log_tail(100_000)
    assert "Successfully loaded servable version {name: mnist version: 1}" in log
    assert "Successfully loaded servable version {name: mnist version: 2}" in log
    assert "Number of warmup records read" in log
    assert "Unknown flag --unknown_flag_for_test=1" in log
