"""Contract test: the gRPC and REST clients give the same answers from the real local model server."""

import numpy as np
import pytest

from gateway.client.grpc_client import GrpcServingClient
from gateway.client.rest_client import RestServingClient
from gateway.config import GatewayConfig
from gateway.errors import NotFound
from tests.support.model_server import start_stable_and_canary_server

TRANSPORTS = ("grpc", "rest")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A model server with versions 1 and 2, `stable` -> 1 and `canary` -> 2."""
    root = tmp_path_factory.mktemp("gateway_transports")
    running = start_stable_and_canary_server(root)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def clients(server):
    config = GatewayConfig(grpc_port=server.grpc_port, rest_port=server.rest_port, upstream_timeout_s=10.0)
    made = {"grpc": GrpcServingClient(config), "rest": RestServingClient(config)}
    yield made
    for client in made.values():
        client.close()


@pytest.fixture(scope="module")
def batch() -> np.ndarray:
    images = np.random.default_rng(0).random((5, 28, 28, 1)).astype(np.float32)
    images[0] = 0.0
    images[1, 8:20, 13:15] = 1.0  # something 1-like
    return images


def test_both_transports_return_identical_predictions(clients, batch):
    grpc_answer = clients["grpc"].predict(batch, version=1)
    rest_answer = clients["rest"].predict(batch, version=1)
    assert grpc_answer.version == rest_answer.version == 1
    assert grpc_answer.probabilities.shape == (5, 10)
    assert np.allclose(grpc_answer.probabilities, rest_answer.probabilities, atol=1e-6)
    assert np.allclose(grpc_answer.probabilities.sum(axis=1), 1.0, atol=1e-4)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_labels_resolve_to_versions(clients, transport):
    assert clients[transport].version_for_label("stable") == 1
    assert clients[transport].version_for_label("canary") == 2


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_unknown_label_is_not_found(clients, transport):
    with pytest.raises(NotFound) as info:
        clients[transport].version_for_label("no-such-label")
    assert info.value.code == "unknown_label"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_unknown_version_is_not_found(clients, transport, batch):
    with pytest.raises(NotFound) as info:
        clients[transport].predict(batch, version=99)
    assert info.value.code == "unknown_version"


def test_both_transports_report_the_same_status(clients):
    grpc_status = sorted((item.version, item.state) for item in clients["grpc"].model_status())
    rest_status = sorted((item.version, item.state) for item in clients["rest"].model_status())
    assert grpc_status == rest_status == [(1, "AVAILABLE"), (2, "AVAILABLE")]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_version_2_serves_when_asked(clients, transport, batch):
    assert clients[transport].predict(batch[:1], version=2).version == 2
