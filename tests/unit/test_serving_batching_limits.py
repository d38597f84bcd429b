"""The gateway's batch limit and the model server's batching limits agree (TF Serving rejects larger)."""

import dataclasses

from gateway.config import GatewayConfig
from serving.model_server import config as config_io


def test_gateway_max_batch_size_is_what_the_shipped_batching_config_accepts(repo_root):
    gateway_default = {f.name: f.default for f in dataclasses.fields(GatewayConfig)}["max_batch_size"]
    batching = config_io.load_batching_parameters(repo_root / "serving" / "batching.config")
    assert batching.max_batch_size == gateway_default


def test_shipped_batching_config_splits_large_requests_into_small_model_calls(repo_root):
    batching = config_io.load_batching_parameters(repo_root / "serving" / "batching.config")
    assert batching.enable_large_batch_splitting
    assert batching.max_execution_batch_size < batching.max_batch_size
