"""Read and validate TF Serving's text-format config files with the official protos."""

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format, wrappers_pb2
from tensorflow_serving.config import model_server_config_pb2

from contract.layout import with_prefix
from serving.model_server.errors import ServingError, invalid_argument

ModelServerConfig = model_server_config_pb2.ModelServerConfig
ModelConfig = model_server_config_pb2.ModelConfig
TENSORFLOW_PLATFORM = "tensorflow"
DEFAULT_PROMETHEUS_PATH = "/monitoring/prometheus/metrics"  # PrometheusExporter::kPrometheusPath


def _build_missing_protos():
    """MonitoringConfig and BatchingParameters, which the tensorflow-serving-api wheel does not ship.

    Field names, numbers and types copy tensorflow_serving/config/monitoring_config.proto and
    tensorflow_serving/servables/tensorflow/session_bundle_config.proto (BatchingParameters), so text
    files valid for tensorflow_model_server parse identically here.
    """
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(wrappers_pb2.DESCRIPTOR.serialized_pb)
    fdp = descriptor_pb2.FileDescriptorProto(
        name="serving_local/monitoring_and_batching.proto",
        package="tensorflow.serving",
        syntax="proto3",
        dependency=["google/protobuf/wrappers.proto"],
    )
    f = descriptor_pb2.FieldDescriptorProto
    prometheus = fdp.message_type.add(name="PrometheusConfig")
    prometheus.field.add(name="enable", number=1, type=f.TYPE_BOOL, label=f.LABEL_OPTIONAL)
    prometheus.field.add(name="path", number=2, type=f.TYPE_STRING, label=f.LABEL_OPTIONAL)
    monitoring = fdp.message_type.add(name="MonitoringConfig")
    monitoring.field.add(
        name="prometheus_config",
        number=1,
        type=f.TYPE_MESSAGE,
        label=f.LABEL_OPTIONAL,
        type_name=".tensorflow.serving.PrometheusConfig",
    )
    batching = fdp.message_type.add(name="BatchingParameters")
    for name, number, wrapper in (
        ("max_batch_size", 1, "Int64Value"),
        ("batch_timeout_micros", 2, "Int64Value"),
        ("max_enqueued_batches", 3, "Int64Value"),
        ("num_batch_threads", 4, "Int64Value"),
        ("thread_pool_name", 5, "StringValue"),
        ("enable_large_batch_splitting", 8, "BoolValue"),
        ("max_execution_batch_size", 9, "Int64Value"),
    ):
        batching.field.add(
            name=name,
            number=number,
            type=f.TYPE_MESSAGE,
            label=f.LABEL_OPTIONAL,
            type_name=f".google.protobuf.{wrapper}",
        )
    batching.field.add(name="allowed_batch_sizes", number=6, type=f.TYPE_INT64, label=f.LABEL_REPEATED)
    batching.field.add(name="pad_variable_length_inputs", number=7, type=f.TYPE_BOOL, label=f.LABEL_OPTIONAL)
    pool.Add(fdp)
    return (
        message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.serving.MonitoringConfig")),
        message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.serving.BatchingParameters")),
    )


MonitoringConfig, BatchingParameters = _build_missing_protos()


def parse_text_proto(path: str | os.PathLike, message_cls):
    """Parse a text-format proto file; raise INVALID_ARGUMENT naming the file and the parser's complaint."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise invalid_argument(f"Failed to read protobuf file: '{path}': {exc.strerror}") from None
    message = message_cls()
    try:
        text_format.Parse(text, message)
    except text_format.ParseError as exc:
        # tensorflow_model_server reports "Invalid protobuf file: '<path>'"; we add the parser's reason.
        raise invalid_argument(f"Invalid protobuf file: '{path}': {exc}") from None
    return message


def _is_relative(uri: str) -> bool:
    return "://" not in uri and not uri.startswith("/")


def validate_model_server_config(config) -> None:
    """Apply ServerCore's checks (server_core.cc ValidateModelConfigList, GetPlatform, routes)."""
    which = config.WhichOneof("config")
    if which == "custom_model_config":
        raise invalid_argument(
            "ServerModelConfig type not supported by HandleReloadConfigRequest. "
            "Only ModelConfigList is currently supported"
        )
    seen = set()
    for model in config.model_config_list.config:
        if model.name in seen:
            raise invalid_argument(f"Illegal to list model {model.name} multiple times in config list")
        seen.add(model.name)
        if _is_relative(model.base_path):
            raise invalid_argument(
                f"Expected model {model.name} to have an absolute path or URI; "
                f"got base_path()={model.base_path}"
            )
        platform = model.model_platform or TENSORFLOW_PLATFORM
        if platform != TENSORFLOW_PLATFORM:
            raise invalid_argument(f"Model {model.name} requests unsupported platform {platform}")
        policy = model.model_version_policy
        if policy.WhichOneof("policy_choice") == "latest" and policy.latest.num_versions < 0:
            raise invalid_argument(f"Model {model.name}: latest.num_versions must be >= 0")


def single_model_config(model_name: str, model_base_path: str):
    """The config tensorflow_model_server builds from --model_name/--model_base_path (latest 1)."""
    config = ModelServerConfig()
    model = config.model_config_list.config.add()
    model.name = model_name
    model.base_path = model_base_path
    model.model_platform = TENSORFLOW_PLATFORM
    return config


def load_model_server_config(path: str | os.PathLike):
    """Parse and validate a --model_config_file."""
    config = parse_text_proto(path, ModelServerConfig)
    validate_model_server_config(config)
    return config


def with_storage_prefix(config, prefix: str):
    """A copy of `config` with every base_path under `prefix` (local-only --storage_path_prefix)."""
    if not prefix:
        return config
    copy = ModelServerConfig()
    copy.CopyFrom(config)
    for model in copy.model_config_list.config:
        model.base_path = with_prefix(model.base_path, prefix)
    return copy


@dataclass(frozen=True)
class PrometheusSettings:
    """Whether and where to expose Prometheus metrics."""

    enabled: bool = False
    path: str = DEFAULT_PROMETHEUS_PATH


def load_monitoring_config(path: str | os.PathLike | None) -> PrometheusSettings:
    """Parse a --monitoring_config_file (MonitoringConfig)."""
    if not path:
        return PrometheusSettings()
    config = parse_text_proto(path, MonitoringConfig)
    prom = config.prometheus_config
    return PrometheusSettings(enabled=prom.enable, path=prom.path or DEFAULT_PROMETHEUS_PATH)


@dataclass(frozen=True)
class BatchingSettings:
    """The BatchingParameters fields the local batcher uses, with TF Serving's defaults."""

    max_batch_size: int = 1000
    batch_timeout_micros: int = 0
    max_enqueued_batches: int = 10
    num_batch_threads: int = 1
    allowed_batch_sizes: tuple[int, ...] = ()
    enable_large_batch_splitting: bool = False
    # Rows per executed batch when splitting; GetQueueOptions makes it max_batch_size when unset.
    max_execution_batch_size: int = 1000


def load_batching_parameters(path: str | os.PathLike | None) -> BatchingSettings:
    """Parse a --batching_parameters_file, checking allowed_batch_sizes like BatchingSession does."""
    if not path:
        return BatchingSettings()
    params = parse_text_proto(path, BatchingParameters)
    defaults = BatchingSettings()

    def get(name, default):
        return getattr(params, name).value if params.HasField(name) else default

    settings = BatchingSettings(
        max_batch_size=get("max_batch_size", defaults.max_batch_size),
        batch_timeout_micros=get("batch_timeout_micros", defaults.batch_timeout_micros),
        max_enqueued_batches=get("max_enqueued_batches", defaults.max_enqueued_batches),
        num_batch_threads=get("num_batch_threads", defaults.num_batch_threads),
        allowed_batch_sizes=tuple(params.allowed_batch_sizes),
        enable_large_batch_splitting=get("enable_large_batch_splitting", False),
    )
    max_batch_size = settings.max_batch_size
    settings = dataclasses.replace(
        settings, max_execution_batch_size=get("max_execution_batch_size", max_batch_size)
    )
    if max_batch_size < 1 or settings.num_batch_threads < 1 or settings.max_execution_batch_size < 1:
        raise invalid_argument(
            "max_batch_size, max_execution_batch_size and num_batch_threads must be positive"
        )
    if settings.enable_large_batch_splitting and settings.max_execution_batch_size > max_batch_size:
        raise invalid_argument(
            f"max_execution_batch_size ({settings.max_execution_batch_size}) must not exceed max_batch_size "
            f"({max_batch_size})"
        )
    sizes = settings.allowed_batch_sizes
    if sizes:
        if list(sizes) != sorted(set(sizes)):
            raise invalid_argument("allowed_batch_sizes entries must be monotonically increasing")
        if sizes[-1] != settings.max_batch_size:
            raise invalid_argument(
                "Last entry in allowed_batch_sizes must match max_batch_size; last "
                f"entry was {sizes[-1]}; expected {settings.max_batch_size}"
            )
    return settings


__all__ = ["ServingError", "ModelServerConfig", "MonitoringConfig", "BatchingParameters"]
