"""Config files parse with TF Serving's protos, and what TF Serving rejects is rejected here."""

import os

import grpc
import pytest

from serving.model_server import config as config_io
from serving.model_server.errors import ServingError
from serving.model_server.flags import parse_flags


def test_shipped_models_config_serves_mnist_with_stable_label(repo_root):
    config = config_io.load_model_server_config(repo_root / "serving" / "models.config")
    (model,) = config.model_config_list.config
    assert model.name == "mnist"
    assert model.base_path == "/models/mnist"
    assert model.model_platform == "tensorflow"
    assert dict(model.version_labels) == {"stable": 1}


def test_storage_prefix_maps_container_path_to_repo(repo_root):
    config = config_io.load_model_server_config(repo_root / "serving" / "models.config")
    local = config_io.with_storage_prefix(config, str(repo_root))
    assert local.model_config_list.config[0].base_path == f"{repo_root}/models/mnist"


def test_shipped_monitoring_config_enables_prometheus(repo_root):
    settings = config_io.load_monitoring_config(repo_root / "serving" / "monitoring.config")
    assert settings == config_io.PrometheusSettings(enabled=True, path="/monitoring/prometheus/metrics")


def test_shipped_batching_config_parses(repo_root):
    settings = config_io.load_batching_parameters(repo_root / "serving" / "batching.config")
    assert settings.max_batch_size == 64
    assert (settings.enable_large_batch_splitting, settings.max_execution_batch_size) == (True, 16)
    assert settings.num_batch_threads == 2


def test_max_execution_batch_size_defaults_to_max_batch_size_like_get_queue_options(tmp_path):
    path = tmp_path / "batching.config"
    path.write_text("max_batch_size { value: 32 } enable_large_batch_splitting { value: true }")
    assert config_io.load_batching_parameters(path).max_execution_batch_size == 32


def test_max_execution_batch_size_above_max_batch_size_is_rejected(tmp_path):
    path = tmp_path / "batching.config"
    path.write_text(
        "max_batch_size { value: 8 } enable_large_batch_splitting { value: true } "
        "max_execution_batch_size { value: 16 }"
    )
    with pytest.raises(ServingError, match="must not exceed max_batch_size"):
        config_io.load_batching_parameters(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            'model_config_list { config { name: "m" base_path: "/x" bogus_field: 1 } }',
            "Invalid protobuf file",
        ),
        (
            'model_config_list { config { name: "m" base_path: "models/m" } }',
            "Expected model m to have an absolute path or URI; got base_path()=models/m",
        ),
        (
            'model_config_list { config { name: "m" base_path: "/a" } config { name: "m" base_path: "/b" } }',
            "Illegal to list model m multiple times in config list",
        ),
        (
            'model_config_list { config { name: "m" base_path: "/a" model_platform: "pytorch" } }',
            "Model m requests unsupported platform pytorch",
        ),
    ],
)
def test_invalid_model_config_is_rejected_with_clear_message(tmp_path, text, message):
    path = tmp_path / "models.config"
    path.write_text(text)
    with pytest.raises(ServingError) as info:
        config_io.load_model_server_config(path)
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert message in info.value.message
    if "Invalid protobuf" in message:
        assert str(path) in info.value.message and "bogus_field" in info.value.message


def test_batching_allowed_sizes_must_end_at_max_batch_size(tmp_path):
    path = tmp_path / "batching.config"
    path.write_text("max_batch_size { value: 8 } allowed_batch_sizes: 2 allowed_batch_sizes: 4")
    with pytest.raises(ServingError, match="must match max_batch_size"):
        config_io.load_batching_parameters(path)


def test_monitoring_config_typo_is_rejected(tmp_path):
    path = tmp_path / "monitoring.config"
    path.write_text("prometheus_config { enabled: true }")
    with pytest.raises(ServingError, match="Invalid protobuf file"):
        config_io.load_monitoring_config(path)


def test_flags_take_tf_serving_forms_and_warn_on_unknown(caplog):
    flags = parse_flags(
        [
            "--port=9000",
            "--rest_api_port",
            "9001",
            "--enable_batching",
            "--allow_version_labels_for_unavailable_models=true",
            "--model_name=mnist",
            "--file_system_poll_wait_seconds=0",
            "--no_such_flag=2",
        ]
    )
    assert (flags.port, flags.rest_api_port, flags.enable_batching) == (9000, 9001, True)
    assert flags.allow_version_labels_for_unavailable_models is True
    assert flags.file_system_poll_wait_seconds == 0
    assert flags.unknown == ["--no_such_flag=2"]
    assert "Unknown flag --no_such_flag=2" in caplog.text


@pytest.mark.parametrize(
    "argv",
    [
        ["--port=abc"],
        ["--enable_batching=maybe"],
        ["--enable_batching=on"],  # contract.parsing knows "on"; tensorflow_model_server does not
        ["--model_name"],
        ["--rest_api_num_threads=0"],
        ["--grpc_max_threads=-1"],
    ],
)
def test_bad_flag_values_are_errors(argv):
    with pytest.raises(ValueError):
        parse_flags(argv)


def test_tflite_flags_default_like_tf_serving():
    defaults = parse_flags([])
    assert defaults.prefer_tflite_model is False
    assert defaults.num_tflite_pools == len(os.sched_getaffinity(0))  # NumSchedulableCPUs
    assert defaults.num_tflite_interpreters_per_pool == 1
    flags = parse_flags(["--prefer_tflite_model=true", "--num_tflite_pools=3"])
    assert (flags.prefer_tflite_model, flags.num_tflite_pools) == (True, 3)


def test_thread_flags_default_to_four_per_cpu_like_tf_serving():
    defaults = parse_flags([])
    cpus = len(os.sched_getaffinity(0))
    assert (defaults.grpc_max_threads, defaults.rest_api_num_threads) == (4 * cpus, 4 * cpus)


def test_grpc_socket_path_flag():
    assert parse_flags([]).grpc_socket_path == ""
    assert parse_flags(["--grpc_socket_path=/tmp/tfs.sock"]).grpc_socket_path == "/tmp/tfs.sock"
