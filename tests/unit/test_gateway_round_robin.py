"""The gRPC client over two in-process model servers: round_robin spreads calls, skips a dead server, and
takes a restarted one back; per-server status asks each on its own."""

import time
from concurrent import futures

import grpc
import numpy as np
import pytest

from gateway.client.grpc_client import GrpcServingClient
from gateway.config import GatewayConfig
from gateway.proto import tf_serving_subset_pb2 as pb
from tests.support.processes import free_port

IMAGES = np.zeros((1, 28, 28, 1), np.float32)
RETURN_S = 10.0


class StubModelServer:
    """Predict and GetModelStatus on 127.0.0.1:`port`; replies carry version 1, `calls` counts Predicts."""

    def __init__(self, port: int):
        self.port = port
        self.calls = 0
        self._server: grpc.Server | None = None

    def _predict(self, request, context):
        self.calls += 1
        response = pb.PredictResponse()
        response.model_spec.name = request.model_spec.name
        response.model_spec.version.value = 1
        probabilities = response.outputs["probabilities"]
        probabilities.dtype = pb.DT_FLOAT
        probabilities.tensor_shape.dim.add(size=1)
        probabilities.tensor_shape.dim.add(size=10)
        probabilities.float_val.extend([0.1] * 10)
        return response

    def _status(self, request, context):
        response = pb.GetModelStatusResponse()
        response.model_version_status.add(version=1, state=pb.ModelVersionStatus.AVAILABLE)
        return response

    def start(self) -> "StubModelServer":
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        server.add_generic_rpc_handlers(
            (
                grpc.method_handlers_generic_handler(
                    "tensorflow.serving.PredictionService",
                    {
                        "Predict": grpc.unary_unary_rpc_method_handler(
                            self._predict, pb.PredictRequest.FromString, pb.PredictResponse.SerializeToString
                        )
                    },
                ),
                grpc.method_handlers_generic_handler(
                    "tensorflow.serving.ModelService",
                    {
                        "GetModelStatus": grpc.unary_unary_rpc_method_handler(
                            self._status,
                            pb.GetModelStatusRequest.FromString,
                            pb.GetModelStatusResponse.SerializeToString,
                        )
                    },
                ),
            )
        )
        assert server.add_insecure_port(f"127.0.0.1:{self.port}") == self.port
        server.start()
        self._server = server
        return self

    def stop(self) -> None:
        self._server.stop(0).wait()


@pytest.fixture
def servers():
    started = [StubModelServer(free_port()).start() for _ in range(2)]
    yield started
    for server in started:
        server.stop()


def client_for(servers) -> GrpcServingClient:
    target = ",".join(f"127.0.0.1:{server.port}" for server in servers)
    return GrpcServingClient(GatewayConfig(grpc_target_override=target, upstream_timeout_s=5.0))


def test_predictions_are_spread_over_both_servers(servers):
    client = client_for(servers)
    try:
        for _ in range(40):
            assert client.predict(IMAGES, label="stable").version == 1
    finally:
        client.close()
    assert [server.calls >= 10 for server in servers] == [True, True], [s.calls for s in servers]


def test_a_dead_server_is_skipped_and_a_restarted_one_used_again(servers):
    client = client_for(servers)
    try:
        for _ in range(10):
            client.predict(IMAGES, label="stable")
        servers[0].stop()
        before = servers[1].calls
        for _ in range(20):
            assert client.predict(IMAGES, label="stable").version == 1  # none fails
        assert servers[1].calls - before == 20
        rows = {row.address: row for row in client.backend_statuses()}
        down, up = (f"127.0.0.1:{server.port}" for server in servers)
        assert rows[down].error and "unavailable" in rows[down].error and rows[down].versions is None
        assert rows[up].error is None and rows[up].state_of(1) == "AVAILABLE"

        servers[0] = StubModelServer(servers[0].port).start()
        deadline = time.monotonic() + RETURN_S
        while servers[0].calls == 0 and time.monotonic() < deadline:
            client.predict(IMAGES, label="stable")
            time.sleep(0.01)
        assert servers[0].calls > 0, "the restarted server was never used again"
    finally:
        client.close()


def test_backend_status_asks_each_server_of_the_list(servers):
    client = client_for(servers)
    try:
        rows = client.backend_statuses()
    finally:
        client.close()
    assert [row.address for row in rows] == [f"127.0.0.1:{server.port}" for server in servers]
    assert all(row.state_of(1) == "AVAILABLE" for row in rows)
