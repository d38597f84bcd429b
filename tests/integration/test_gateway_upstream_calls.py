"""The real gateway and model server with a pass-through between them that counts and can slow calls.

The pass-through forwards every gRPC call's bytes unchanged to the real model server; it only counts
calls by method and, when asked, holds each one for a while (a slow model server).
"""

import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import numpy as np
import pytest
import requests

from gateway.client.grpc_client import GrpcServingClient
from gateway.config import GatewayConfig
from tests.fixtures.digit_images import draw_digit, encode
from tests.fixtures.gateway_process import gateway_env, start_gateway
from tests.support.model_server import start_model_server, start_stable_and_canary_server

TIMEOUT_S = 15


class CountingPassThrough:
    """A gRPC server that forwards every unary call to `target`, counting by method, after `delay_s`."""

    def __init__(self, target: str):
        self.calls: Counter[str] = Counter()
        self.delay_s = 0.0
        self._lock = threading.Lock()
        self._upstream = grpc.insecure_channel(target)
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        self._server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("", {}), self))
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()

    def service(self, handler_call_details):
        """grpc.GenericRpcHandler: one forwarding handler for whatever method was called."""
        method = handler_call_details.method
        forward = self._upstream.unary_unary(method)  # bytes in, bytes out

        def handle(request: bytes, context):
            with self._lock:
                self.calls[method.rsplit("/", 1)[-1]] += 1
            time.sleep(self.delay_s)
            try:
                return forward(request, timeout=context.time_remaining())
            except grpc.RpcError as error:
                context.abort(error.code(), error.details() or "")

        return grpc.unary_unary_rpc_method_handler(handle)

    def snapshot(self) -> Counter:
        with self._lock:
            return Counter(self.calls)

    def stop(self) -> None:
        self._server.stop(grace=0)
        self._upstream.close()


class RestPassThrough:
    """An HTTP server that forwards every request to the model server's REST API, counting by kind."""

    def __init__(self, target: str):
        self.calls: Counter[str] = Counter()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)) or None
                kind = (
                    "predict"
                    if self.path.endswith(":predict")
                    else "metadata"
                    if "metadata" in self.path
                    else "status"
                )
                outer.calls[kind] += 1
                upstream = urllib.request.Request(target + self.path, data=body, method=self.command)
                upstream.add_header("Content-Type", "application/json")
                try:
                    with urllib.request.urlopen(upstream, timeout=10) as reply:
                        status, data = reply.status, reply.read()
                except urllib.error.HTTPError as error:
                    status, data = error.code, error.read()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _forward  # noqa: N815 - http.server naming

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def predict(url: str, **params) -> requests.Response:
    files = {"image": ("7.png", encode(draw_digit(7)), "image/png")}
    return requests.post(f"{url}/v1/predict", files=files, params=params, timeout=TIMEOUT_S)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """Model server (stable -> 1, canary -> 2), the pass-through, a gateway through it."""
    root = tmp_path_factory.mktemp("upstream_calls")
    server = start_stable_and_canary_server(root)
    proxy = CountingPassThrough(server.grpc_target)
    gateway = start_gateway(root, gateway_env(proxy.port, server.rest_port, "grpc"), workers=1, threads=4)
    yield server, proxy, gateway
    gateway.stop()
    proxy.stop()
    server.stop()


def test_label_predicts_are_one_upstream_call_each_and_listing_does_not_add_to_them(stack):
    _, proxy, gateway = stack
    before = proxy.snapshot()
    for _ in range(5):
        reply = predict(gateway.url)
        assert reply.status_code == 200 and reply.json()["model"] == {
            "name": "mnist",
            "version": 1,
            "label": "stable",
        }
    canary = predict(gateway.url, label="canary").json()["model"]
    assert canary == {"name": "mnist", "version": 2, "label": "canary"}
    after_predicts = proxy.snapshot()
    assert after_predicts - before == Counter({"Predict": 6})

    listing = requests.get(f"{gateway.url}/v1/models", timeout=TIMEOUT_S).json()
    assert listing["labels"] == {"stable": 1, "canary": 2}
    for _ in range(3):
        assert predict(gateway.url).status_code == 200
    assert proxy.snapshot()["Predict"] - after_predicts["Predict"] == 3
    assert proxy.snapshot()["GetModelMetadata"] - after_predicts["GetModelMetadata"] <= 2  # the listing's


def test_unknown_label_is_404_from_the_predict_itself(stack):
    _, proxy, gateway = stack
    before = proxy.snapshot()
    reply = predict(gateway.url, label="nope")
    assert reply.status_code == 404 and reply.json()["error"]["code"] == "unknown_label"
    assert proxy.snapshot() - before == Counter({"Predict": 1})


def test_one_deadline_covers_every_upstream_call_of_a_request(tmp_path):
    # explain=true: the Predict, then the explain call to the version that answered. Each takes 0.7 s
    # in a 1 s budget: with a deadline per call the request took 1.4 s and answered.
    server = start_model_server(tmp_path)
    proxy = CountingPassThrough(server.grpc_target)
    env = gateway_env(proxy.port, server.rest_port, "grpc", DEFAULT_LABEL="", UPSTREAM_TIMEOUT_S="1.0")
    env["LABEL_CACHE_S"] = "0"
    gateway = start_gateway(tmp_path, env, workers=1, threads=2)
    try:
        before = proxy.snapshot()
        assert predict(gateway.url).status_code == 200
        # No label: the latest, one Predict naming no version (no GetModelStatus first).
        assert proxy.snapshot() - before == Counter({"Predict": 1})
        proxy.delay_s = 0.7
        start = time.monotonic()
        reply = predict(gateway.url, explain="true")
        elapsed = time.monotonic() - start
        assert reply.status_code == 504 and reply.json()["error"]["code"] == "upstream_timeout", reply.text
        assert elapsed < 2 * proxy.delay_s
    finally:
        gateway.stop()
        proxy.stop()
        server.stop()


def test_gateway_reaches_the_model_server_over_a_unix_socket(tmp_path):
    socket_path = tmp_path / "grpc.sock"
    server = start_model_server(tmp_path, extra_flags=[f"--grpc_socket_path={socket_path}"])
    target = f"unix:{socket_path}"
    try:
        client = GrpcServingClient(GatewayConfig(grpc_target_override=target, grpc_port=1))
        assert client.predict(np.zeros((1, 28, 28, 1), np.float32), version=1).version == 1
        client.close()
        env = gateway_env(1, server.rest_port, "grpc", TF_SERVING_GRPC_TARGET=target, DEFAULT_LABEL="")
        gateway = start_gateway(tmp_path, env, workers=1, threads=2)
        try:
            assert predict(gateway.url).json()["model"]["version"] == 1
        finally:
            gateway.stop()
    finally:
        server.stop()


def test_rest_resolves_a_label_once_per_cache_period_and_listing_keeps_the_cache(tmp_path):
    server = start_stable_and_canary_server(tmp_path)
    proxy = RestPassThrough(server.rest_url)
    env = gateway_env(server.grpc_port, proxy.port, "rest", LABEL_CACHE_S="60")
    gateway = start_gateway(tmp_path, env, workers=1, threads=2)
    try:
        assert predict(gateway.url).json()["model"] == {"name": "mnist", "version": 1, "label": "stable"}
        before = Counter(proxy.calls)
        for _ in range(3):
            assert requests.get(f"{gateway.url}/v1/models", timeout=TIMEOUT_S).status_code == 200
        for _ in range(4):
            assert predict(gateway.url).json()["model"]["version"] == 1
        # Four predicts, and the listings' own status calls (plus canary's one resolution): no
        # re-resolution of stable for the predicts.
        assert proxy.calls - before == Counter({"predict": 4, "status": 3, "metadata": 1})
    finally:
        gateway.stop()
        proxy.stop()
        server.stop()
