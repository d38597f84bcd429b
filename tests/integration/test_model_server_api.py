"""The local model server's REST and gRPC APIs against a real exported SavedModel, as TF Serving answers."""

import json
import socket
import urllib.error
import urllib.parse
import urllib.request
from http.client import HTTPResponse
from pathlib import Path

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
    rest_call,
    start_model_server,
    write_model_config,
)
from tests.support.processes import READY_TIMEOUT_S, ServiceProcess

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


http = rest_call


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


def metrics_page(server) -> str:
    with urllib.request.urlopen(server.rest_url + "/monitoring/prometheus/metrics", timeout=10) as response:
        return response.read().decode()


def test_prometheus_metrics_count_requests_by_status(server):
    http(server, "POST", "/v1/models/mnist:predict", IMAGE_JSON)
    http(server, "POST", "/v1/models/foo:predict", IMAGE_JSON)
    page = metrics_page(server)
    assert ':tensorflow:serving:request_count_total{entrypoint="REST",model_name="mnist",status="OK"}' in page
    # foo is not in the config: counted, but under no name of its own.
    assert (
        ':tensorflow:serving:request_count_total{entrypoint="REST",model_name="",status="NOT_FOUND"}' in page
    )
    assert ":tensorflow:serving:request_latency_bucket{" in page


def test_a_gateway_metrics_dir_in_the_environment_does_not_break_the_model_server(tmp_path, monkeypatch):
    # PROMETHEUS_MULTIPROC_DIR is the gateway's setting; inherited by the model server, prometheus_client
    # would write (or fail to write) multiprocess files instead of keeping its metrics in memory.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "gone"))
    running = start_model_server(tmp_path / "server", name="multiproc_env_model_server")
    try:
        http(running, "POST", "/v1/models/mnist:predict", IMAGE_JSON)
        page = metrics_page(running)
    finally:
        running.stop()
    assert ':tensorflow:serving:request_count_total{entrypoint="REST",model_name="mnist",status="OK"}' in page
    assert not (tmp_path / "gone").exists()


def test_model_names_not_in_the_config_create_no_series(server, prediction_stub):
    def unlisted(name: str) -> None:
        http(server, "POST", f"/v1/models/{urllib.parse.quote(name)}:predict", IMAGE_JSON)
        with pytest.raises(grpc.RpcError):
            prediction_stub.Predict(official_predict_request(IMAGES[:1], name=name), timeout=30)

    unlisted("first-unlisted")  # the one series unlisted names share, per entry point
    before = metrics_page(server).splitlines()
    unlisted('x"y\n')
    for i in range(100):
        unlisted(f"random-{i}")
    page = metrics_page(server)
    assert "random-" not in page and "x\\" not in page and 'x"y' not in page
    assert len(page.splitlines()) == len(before)


@pytest.mark.parametrize("length", ["-5", "abc", "1, 2", "+3"])
def test_bad_content_length_is_a_400_json_error(server, length):
    with socket.create_connection(("127.0.0.1", server.rest_port), timeout=30) as sock:
        sock.sendall(
            f"POST /v1/models/mnist:predict HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n".encode()
        )
        response = HTTPResponse(sock)
        response.begin()
        assert response.status == 400
        assert json.loads(response.read()) == {"error": f"Invalid Content-Length header: {length!r}"}
    assert http(server, "GET", "/v1/models/mnist")[0] == 200  # and the server keeps serving


def test_log_says_what_loaded_and_warns_about_unknown_flags(server):
    log = server.process.log_tail(100_000)
    assert "Successfully loaded servable version {name: mnist version: 1}" in log
    assert "Successfully loaded servable version {name: mnist version: 2}" in log
    assert "Number of warmup records read" in log
    assert "Unknown flag --unknown_flag_for_test=1" in log


# ---------------------------------------------------------------- Unix socket, batching, REST threads

REST_THREADS = 2


@pytest.fixture(scope="module")
def tuned_server(tmp_path_factory, repo_root):
    """The shipped batching.config, gRPC on a Unix socket too, and few REST threads."""
    root = tmp_path_factory.mktemp("tuned")
    running = start_model_server(
        root,
        extra_flags=[
            "--enable_batching=true",
            f"--batching_parameters_file={repo_root / 'serving' / 'batching.config'}",
            f"--grpc_socket_path={root / 'grpc.sock'}",
            f"--rest_api_num_threads={REST_THREADS}",
        ],
        name="tuned_model_server",
    )
    running.grpc_socket_path = root / "grpc.sock"
    yield running
    running.stop()


def test_grpc_over_the_unix_socket_answers_like_tcp(tuned_server):
    request = official_predict_request(IMAGES)
    with grpc.insecure_channel(f"unix:{tuned_server.grpc_socket_path}") as unix_channel:
        over_unix = prediction_service_pb2_grpc.PredictionServiceStub(unix_channel).Predict(
            request, timeout=30
        )
    with grpc.insecure_channel(tuned_server.grpc_target) as tcp_channel:
        tcp_stub = prediction_service_pb2_grpc.PredictionServiceStub(tcp_channel)
        over_tcp = tcp_stub.Predict(request, timeout=30)
    assert list(over_unix.outputs["digit"].int64_val) == list(over_tcp.outputs["digit"].int64_val)
    assert over_unix.model_spec.version.value == 1
    assert "Running gRPC ModelServer at UNIX socket" in tuned_server.process.log_tail(100_000)


def batch_of(rows: int) -> np.ndarray:
    return np.resize(IMAGES, (rows, 28, 28, 1))


def test_batch_of_max_batch_size_is_split_and_answered_whole(tuned_server):
    images = batch_of(64)  # the gateway's limit; runs as 16-image model calls
    status, body = http(
        tuned_server, "POST", "/v1/models/mnist:predict", json.dumps({"instances": images.tolist()}).encode()
    )
    assert status == 200 and len(body["predictions"]) == 64
    with grpc.insecure_channel(tuned_server.grpc_target) as channel:
        reply = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
            official_predict_request(images), timeout=30
        )
    assert [p["digit"] for p in body["predictions"]] == list(reply.outputs["digit"].int64_val)
    assert list(reply.outputs["digit"].int64_val[:3]) == list(reply.outputs["digit"].int64_val[3:6])


def test_batch_over_max_batch_size_is_refused_like_tf_serving(tuned_server):
    images = batch_of(65)
    message = "Task size 65 is larger than maximum input batch size 64"
    body = json.dumps({"instances": images.tolist()}).encode()
    assert http(tuned_server, "POST", "/v1/models/mnist:predict", body) == (400, {"error": message})
    with grpc.insecure_channel(tuned_server.grpc_target) as channel, pytest.raises(grpc.RpcError) as info:
        prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
            official_predict_request(images), timeout=30
        )
    assert (info.value.code(), info.value.details()) == (grpc.StatusCode.INVALID_ARGUMENT, message)


def _stalled_request(server) -> socket.socket:
    """A connection whose request announced a body it has not sent: it holds one REST worker."""
    sock = socket.create_connection(("127.0.0.1", server.rest_port), timeout=30)
    sock.sendall(b"POST /v1/models/mnist:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{")
    return sock


def test_rest_requests_beyond_num_threads_wait_for_a_free_worker(tuned_server):
    stalled = [_stalled_request(tuned_server) for _ in range(REST_THREADS)]
    try:
        waiting = socket.create_connection(("127.0.0.1", tuned_server.rest_port), timeout=30)
        waiting.sendall(b"GET /v1/models/mnist HTTP/1.1\r\nHost: x\r\n\r\n")
        waiting.settimeout(1.0)
        with pytest.raises(TimeoutError):  # both workers are busy: the request queues
            waiting.recv(1)
        stalled[0].sendall(b"}")  # the first request completes; its worker takes the waiting one
        waiting.settimeout(30)
        response = HTTPResponse(waiting)
        response.begin()
        assert response.status == 200
        assert json.loads(response.read())["model_version_status"][0]["state"] == "AVAILABLE"
        waiting.close()
    finally:
        for sock in stalled:
            sock.close()


def test_silent_connections_hold_no_rest_worker(tuned_server):
    silent = [
        socket.create_connection(("127.0.0.1", tuned_server.rest_port), timeout=30)
        for _ in range(2 * REST_THREADS)
    ]
    try:
        assert http(tuned_server, "GET", "/v1/models/mnist")[0] == 200
    finally:
        for sock in silent:
            sock.close()


def _thread_count(server) -> int:
    status = Path(f"/proc/{server.process.process.pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("Threads:")))


def test_rest_connections_do_not_each_get_a_thread(tuned_server):
    assert http(tuned_server, "GET", "/v1/models/mnist")[0] == 200
    before = _thread_count(tuned_server)
    connections = []
    try:
        for _ in range(40):  # open keep-alive connections, each with one request answered
            sock = socket.create_connection(("127.0.0.1", tuned_server.rest_port), timeout=30)
            sock.sendall(b"GET /v1/models/mnist HTTP/1.1\r\nHost: x\r\n\r\n")
            response = HTTPResponse(sock)
            response.begin()
            response.read()
            assert response.status == 200
            connections.append(sock)
        assert _thread_count(tuned_server) - before <= REST_THREADS
    finally:
        for sock in connections:
            sock.close()


def test_no_grpc_port_and_no_socket_is_a_clear_start_up_error(tmp_path):
    base = tmp_path / "models" / "mnist"
    copy_model(default_model_version_dir(), base, 1)
    args = ["-m", "serving.model_server", "--port=0", "--model_name=mnist", f"--model_base_path={base}"]
    process = ServiceProcess("no_grpc", args, tmp_path)
    try:
        code = process.process.wait(READY_TIMEOUT_S)
    finally:
        process.stop()
    assert code == 1
    assert "At least one of --port or --grpc_socket_path must be set" in process.log_path.read_text()


def test_port_zero_serves_grpc_only_on_the_socket(tmp_path):
    socket_path = tmp_path / "only.sock"
    running = start_model_server(
        tmp_path, extra_flags=["--port=0", f"--grpc_socket_path={socket_path}"], name="socket_only"
    )
    try:
        with grpc.insecure_channel(f"unix:{socket_path}") as channel:
            reply = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
                official_predict_request(IMAGES[:1]), timeout=30
            )
        assert reply.model_spec.version.value == 1
        log = running.process.log_tail(100_000)
        assert f"Running gRPC ModelServer at UNIX socket {socket_path}" in log
        assert "Running gRPC ModelServer at 127.0.0.1" not in log
    finally:
        running.stop()
