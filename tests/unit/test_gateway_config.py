"""Gateway configuration from environment variables."""

import pytest

from gateway.config import ENV_VARS, GatewayConfig
from ui.config import UIConfig

# What decoding and preprocessing one upload may take beyond the upstream deadline (a 4 MP photo on a
# busy 2-core machine).
PREPROCESS_MARGIN_S = 1.0


def test_defaults_suit_a_local_model_server():
    config = GatewayConfig.from_env({})
    assert config.grpc_target == "127.0.0.1:8500" and config.rest_url == "http://127.0.0.1:8501"
    assert config.transport == "grpc" and config.model_name == "mnist" and config.default_label == "stable"


def test_every_variable_is_read():
    environ = {
        "TF_SERVING_HOST": "tfs",
        "TF_SERVING_GRPC_PORT": "9000",
        "TF_SERVING_GRPC_TARGET": "unix:/run/tfs/grpc.sock",
        "TF_SERVING_REST_PORT": "9001",
        "TF_SERVING_TRANSPORT": "rest",
        "MODEL_NAME": "digits",
        "UPSTREAM_TIMEOUT_S": "0.5",
        "UPSTREAM_RETRIES": "0",
        "UPSTREAM_BACKOFF_S": "0.01",
        "MAX_UPLOAD_BYTES": "1000",
        "MAX_REQUEST_BYTES": "5000",
        "MAX_IMAGE_PIXELS": "4000",
        "MAX_BATCH_SIZE": "8",
        "DEFAULT_LABEL": "prod",
        "ROUTING_FILE": "/tmp/r.json",
        "LABEL_CACHE_S": "2",
        "RETRY_AFTER_S": "3",
        "FEEDBACK_DATABASE_URL": "postgresql://fb@db/feedback",
    }
    assert set(environ) == set(ENV_VARS)
    config = GatewayConfig.from_env(environ)
    assert (config.serving_host, config.grpc_port, config.rest_port, config.transport) == (
        "tfs",
        9000,
        9001,
        "rest",
    )
    assert (config.model_name, config.upstream_timeout_s, config.upstream_retries) == ("digits", 0.5, 0)
    assert (config.max_upload_bytes, config.max_request_bytes, config.max_image_pixels) == (1000, 5000, 4000)
    assert (config.max_batch_size, config.default_label, config.routing_file) == (8, "prod", "/tmp/r.json")
    assert (config.label_cache_s, config.retry_after_s, config.upstream_backoff_s) == (2.0, 3, 0.01)
    assert config.grpc_target == "unix:/run/tfs/grpc.sock"
    assert config.feedback_database == "postgresql://fb@db/feedback"


def test_feedback_defaults_to_a_sqlite_file_under_data():
    assert GatewayConfig.from_env({}).feedback_database == "sqlite:///data/feedback.sqlite3"


def test_default_routing_file_is_the_live_state_one():
    assert GatewayConfig().routing_file == "state/routing.json"


def test_ui_waits_longer_than_the_gateway_spends_upstream():
    # The gateway's whole upstream budget (retries and backoff included) plus decoding and
    # preprocessing time must fit inside the UI's wait, or the UI gives up on an answer on its way.
    assert UIConfig().gateway_timeout_s >= GatewayConfig().upstream_timeout_s + PREPROCESS_MARGIN_S


def test_empty_default_label_means_latest_version():
    assert GatewayConfig.from_env({"DEFAULT_LABEL": ""}).default_label == ""


@pytest.mark.parametrize(
    "environ",
    [
        {"TF_SERVING_TRANSPORT": "carrier-pigeon"},
        {"MAX_BATCH_SIZE": "0"},
        {"TF_SERVING_GRPC_PORT": "eighty"},
        {"UPSTREAM_TIMEOUT_S": "-1"},
        {"TF_SERVING_GRPC_TARGET": "unix:"},
    ],
)
def test_invalid_values_fail_at_startup(environ):
    with pytest.raises(ValueError):
        GatewayConfig.from_env(environ)


def test_default_pixel_limit_is_a_few_megapixels_for_a_28x28_model():
    assert 1_000_000 <= GatewayConfig().max_image_pixels <= 8_000_000
