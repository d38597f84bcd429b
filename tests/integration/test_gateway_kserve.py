"""The gateway configured as for KServe (deploy/kserve/gateway.env): no labels, and a cold start that Knative
gives up on.

No Knative or KServe runs here. The label-less route runs against the real local model server; the
activator giving up is a tiny gRPC server, since no real component here can produce that fault.
"""

import threading
import time
from concurrent import futures

import grpc
import pytest
import requests
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

from tests.fixtures.digit_images import draw_digit, encode
from tests.fixtures.gateway_process import gateway_env, start_gateway
from tests.support.model_server import (
    copy_model,
    default_model_version_dir,
    rest_call,
    start_model_server,
    write_model_config,
)
from tests.support.processes import free_port

TIMEOUT_S = 30
VERSIONS = (1, 2)


def predict(url: str, **params) -> requests.Response:
    return requests.post(
        f"{url}/v1/predict",
        params=params,
        files={"image": ("7.png", encode(draw_digit(7)), "image/png")},
        timeout=TIMEOUT_S,
    )


@pytest.fixture(scope="module")
def two_versions_no_labels(tmp_path_factory):
    """The real local model server with versions 1 and 2 AVAILABLE and no version labels (as on KServe)."""
    root = tmp_path_factory.mktemp("kserve_like")
    base = root / "models" / "mnist"
    for version in VERSIONS:
        copy_model(default_model_version_dir(), base, version)
    server = start_model_server(
        root, model_config_file=write_model_config(root / "models.config", base, policy="all {}")
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            _, body = rest_call(server, "GET", "/v1/models/mnist")
            states = {int(item["version"]): item["state"] for item in body.get("model_version_status", [])}
            if all(states.get(version) == "AVAILABLE" for version in VERSIONS):
                break
            time.sleep(0.2)
        else:
            raise RuntimeError(
                f"versions {VERSIONS} not all AVAILABLE: {states}\n{server.process.log_tail()}"
            )
        yield root, server
    finally:
        server.stop()


@pytest.mark.parametrize("transport", ["grpc", "rest"])
def test_without_labels_the_latest_version_answers_and_is_named(two_versions_no_labels, transport):
    root, server = two_versions_no_labels
    env = gateway_env(server.grpc_port, server.rest_port, transport, DEFAULT_LABEL="")
    gateway = start_gateway(root, env, name=f"gateway-{transport}")
    try:
        for _ in range(3):
            response = predict(gateway.url)
            assert response.status_code == 200, response.text
            # gRPC: a predict with neither version nor label, the version from the reply's model_spec;
            # REST: the latest resolved with GetModelStatus, then named in the predict.
            assert response.json()["model"] == {"name": "mnist", "version": max(VERSIONS), "label": None}
        ready = requests.get(f"{gateway.url}/readyz", timeout=TIMEOUT_S).json()
        assert ready["model"] == {"name": "mnist", "version": max(VERSIONS), "label": None}
        assert (
            predict(gateway.url, version=1).json()["model"]["version"] == 1
        )  # older versions stay reachable
    finally:
        gateway.stop()


class ColdStartActivator(
    prediction_service_pb2_grpc.PredictionServiceServicer, model_service_pb2_grpc.ModelServiceServicer
):
    """Knative's activator during a cold start longer than the revision's timeout: it holds each call
    `hold_s`, then gives up with HTTP 504, which a gRPC client reports as UNAVAILABLE."""

    def __init__(self):
        self.hold_s = 0.0
        self.calls = 0
        self.released = threading.Event()  # ends every hold at teardown

    def _give_up(self, context):
        self.calls += 1
        self.released.wait(self.hold_s)
        context.abort(grpc.StatusCode.UNAVAILABLE, "Received http2 header with status: 504")

    def Predict(self, request, context):  # noqa: N802 - the gRPC method's name
        self._give_up(context)

    def GetModelStatus(self, request, context):  # noqa: N802 - the gRPC method's name
        self._give_up(context)


@pytest.fixture
def activator():
    service = ColdStartActivator()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(service, server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(service, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield service, port
    service.released.set()
    server.stop(grace=0)


def test_a_cold_start_knative_gives_up_on_is_503_with_retry_after_within_the_deadline(tmp_path, activator):
    service, port = activator
    deadline_s = 3.0
    # As deploy/kserve/gateway.env, scaled down: Knative's timeout below the gateway's deadline.
    env = gateway_env(
        port, free_port(), "grpc", DEFAULT_LABEL="", UPSTREAM_TIMEOUT_S=str(deadline_s), RETRY_AFTER_S="10"
    )
    gateway = start_gateway(tmp_path, env, wait_ready=False)
    try:
        # Held 1.2 s then UNAVAILABLE, retried, held again, and so on until the deadline ends a retry.
        service.hold_s = 1.2
        start = time.monotonic()
        response = predict(gateway.url)
        elapsed_s = time.monotonic() - start
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "upstream_unavailable"
        assert response.headers["Retry-After"] == "10"
        assert service.calls >= 2 and elapsed_s < deadline_s + 1.0

        # Misconfigured (Knative's timeout above the gateway's deadline): the gateway's own 504, no
        # Retry-After; tests/unit/test_kserve_manifests.py keeps the manifests from that.
        service.hold_s = deadline_s + 2
        late = predict(gateway.url)
        assert late.status_code == 504 and late.json()["error"]["code"] == "upstream_timeout"
        assert "Retry-After" not in late.headers
    finally:
        gateway.stop()
