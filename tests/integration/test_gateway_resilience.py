"""The gateway when the model server is down, restarted, or hung: 503/504, then recovery by itself."""

import threading
import time
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import numpy as np
import pytest
import requests

from gateway.client.grpc_client import GrpcServingClient
from gateway.client.rest_client import RestServingClient
from gateway.config import GatewayConfig
from gateway.errors import UpstreamError, UpstreamTimeout, UpstreamUnavailable
from gateway.proto import tf_serving_subset_pb2 as pb
from gateway.proto.stubs import PREDICT_METHOD
from tests.fixtures.digit_images import draw_digit, encode
from tests.fixtures.gateway_process import gateway_env, start_gateway
from tests.support.model_server import RunningModelServer, start_model_server, wait_available
from tests.support.processes import ServiceProcess, free_port

TIMEOUT_S = 15
RECOVERY_S = 60


def predict(url: str) -> requests.Response:
    return requests.post(
        f"{url}/v1/predict", files={"image": ("7.png", encode(draw_digit(7)), "image/png")}, timeout=TIMEOUT_S
    )


def restart(server: RunningModelServer, log_dir, name: str) -> RunningModelServer:
    """Start the same model server command again, on the same ports."""
    args = list(server.process.process.args[1:])
    restarted = RunningModelServer(ServiceProcess(name, args, log_dir), server.grpc_port, server.rest_port)
    wait_available(restarted)
    return restarted


@pytest.mark.parametrize("transport", ["grpc", "rest"])
def test_model_server_down_then_restarted(tmp_path, transport):
    server = start_model_server(tmp_path)
    gateway = start_gateway(
        tmp_path,
        gateway_env(
            server.grpc_port, server.rest_port, transport, UPSTREAM_TIMEOUT_S="2", LABEL_CACHE_S="0.5"
        ),
    )
    try:
        assert predict(gateway.url).status_code == 200
        server.stop()

        down = predict(gateway.url)
        assert down.status_code == 503 and down.json()["error"]["code"] == "upstream_unavailable"
        assert down.headers["Retry-After"] == "1"
        assert requests.get(f"{gateway.url}/readyz", timeout=TIMEOUT_S).status_code == 503
        assert requests.get(f"{gateway.url}/healthz", timeout=TIMEOUT_S).status_code == 200

        server = restart(server, tmp_path, "model_server_restarted")
        deadline, status = time.monotonic() + RECOVERY_S, None
        while time.monotonic() < deadline:
            status = predict(gateway.url).status_code
            if status == 200:
                break
            time.sleep(0.2)
        assert status == 200, gateway.process.log_tail()
        # Every worker has reconnected, not just one: a run of requests all succeed.
        assert all(predict(gateway.url).status_code == 200 for _ in range(10))
        assert requests.get(f"{gateway.url}/readyz", timeout=TIMEOUT_S).status_code == 200
    finally:
        gateway.stop()
        server.stop()


class HungPredictionService:
    """A gRPC PredictionService that never answers Predict in time, or fails with a scripted code."""

    def __init__(self, delay_s: float = 0.0, codes: list[grpc.StatusCode] | None = None):
        self.delay_s = delay_s
        self.codes = list(codes or [])
        self.calls = 0

    def predict(self, request: pb.PredictRequest, context) -> pb.PredictResponse:
        self.calls += 1
        if self.codes:
            code = self.codes.pop(0)
            context.abort(code, f"scripted {code.name}")
        time.sleep(self.delay_s)
        count = request.inputs["image"].tensor_shape.dim[0].size
        response = pb.PredictResponse()
        response.model_spec.name = "mnist"
        response.model_spec.version.value = request.model_spec.version.value
        tensor = response.outputs["probabilities"]
        tensor.dtype = pb.DT_FLOAT
        tensor.tensor_shape.dim.add(size=count)
        tensor.tensor_shape.dim.add(size=10)
        tensor.float_val.extend([0.1] * (10 * count))
        return response


@pytest.fixture
def fake_grpc():
    """A fake TF Serving gRPC endpoint on a free port (for faults the real server cannot produce)."""
    service = HungPredictionService()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    handler = grpc.method_handlers_generic_handler(
        "tensorflow.serving.PredictionService",
        {
            "Predict": grpc.unary_unary_rpc_method_handler(
                service.predict,
                request_deserializer=pb.PredictRequest.FromString,
                response_serializer=pb.PredictResponse.SerializeToString,
            )
        },
    )
    assert PREDICT_METHOD == "/tensorflow.serving.PredictionService/Predict"
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield service, port
    server.stop(grace=0)


BATCH = np.zeros((2, 28, 28, 1), np.float32)


def test_hung_grpc_upstream_times_out_within_the_deadline(fake_grpc):
    service, port = fake_grpc
    service.delay_s = 5.0
    client = GrpcServingClient(GatewayConfig(grpc_port=port, upstream_timeout_s=0.5))
    start = time.monotonic()
    with pytest.raises(UpstreamTimeout):
        client.predict(BATCH, version=1)
    assert time.monotonic() - start < 2.0
    client.close()


def test_grpc_unavailable_is_retried_then_succeeds(fake_grpc):
    service, port = fake_grpc
    service.codes = [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAVAILABLE]
    client = GrpcServingClient(GatewayConfig(grpc_port=port, upstream_retries=2, upstream_backoff_s=0.01))
    assert client.predict(BATCH, version=3).version == 3
    assert service.calls == 3
    client.close()


def test_grpc_retries_are_bounded(fake_grpc):
    service, port = fake_grpc
    service.codes = [grpc.StatusCode.UNAVAILABLE] * 10
    client = GrpcServingClient(GatewayConfig(grpc_port=port, upstream_retries=2, upstream_backoff_s=0.01))
    with pytest.raises(UpstreamUnavailable):
        client.predict(BATCH, version=1)
    assert service.calls == 3
    client.close()


@pytest.mark.parametrize("code", [grpc.StatusCode.INTERNAL, grpc.StatusCode.INVALID_ARGUMENT])
def test_grpc_other_errors_are_not_retried(fake_grpc, code):
    service, port = fake_grpc
    service.codes = [code]
    client = GrpcServingClient(GatewayConfig(grpc_port=port, upstream_retries=3, upstream_backoff_s=0.01))
    with pytest.raises(UpstreamError) as info:
        client.predict(BATCH, version=1)
    assert info.value.status == 502 and service.calls == 1
    client.close()


class _SlowHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    delay_s = 5.0

    def do_POST(self):  # noqa: N802 - http.server naming
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        time.sleep(self.delay_s)
        body = b'{"outputs": {"probabilities": [[0.1,0.1,0.1,0.1,0.1,0.1,0.1,0.1,0.1,0.1]]}}'
        try:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up at its deadline, as the test expects

    def log_message(self, *args):
        pass


def test_hung_rest_upstream_times_out_within_the_deadline():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SlowHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        client = RestServingClient(GatewayConfig(rest_port=server.server_address[1], upstream_timeout_s=0.5))
        start = time.monotonic()
        with pytest.raises(UpstreamTimeout):
            client.predict(BATCH[:1], version=1)
        assert time.monotonic() - start < 2.0
    finally:
        server.shutdown()
        server.server_close()


def test_gateway_answers_504_for_a_hung_model_server(tmp_path, fake_grpc):
    service, port = fake_grpc
    service.delay_s = 3.0
    env = gateway_env(port, free_port(), "grpc", UPSTREAM_TIMEOUT_S="0.5", DEFAULT_LABEL="")
    gateway = start_gateway(tmp_path, env, wait_ready=False)
    try:
        response = requests.post(
            f"{gateway.url}/v1/predict?version=1",
            files={"image": ("7.png", encode(draw_digit(7)), "image/png")},
            timeout=TIMEOUT_S,
        )
        assert response.status_code == 504 and response.json()["error"]["code"] == "upstream_timeout"
        service.delay_s = 0.0
        ok = requests.post(
            f"{gateway.url}/v1/predict?version=1",
            files={"image": ("7.png", encode(draw_digit(7)), "image/png")},
            timeout=TIMEOUT_S,
        )
        assert ok.status_code == 200
    finally:
        gateway.stop()
