"""tensorflow_model_server's command-line flags; unknown flags are warned about, not fatal."""

import logging
import os
from dataclasses import dataclass, field, fields

from contract.parsing import parse_bool

log = logging.getLogger(__name__)

# The words this server has always taken for a bool flag; contract.parsing knows a few more (on, off, y,
# n) that tensorflow_model_server would refuse, so those stay errors here.
FLAG_BOOL_WORDS = frozenset({"true", "1", "yes", "t", "false", "0", "no", "f"})


def _four_per_cpu() -> int:
    """4 x NumSchedulableCPUs: tensorflow_model_server's default for its gRPC and REST thread counts."""
    return 4 * len(os.sched_getaffinity(0))


@dataclass
class ServerFlags:
    """Flag values, named and defaulted as in tensorflow_serving/model_servers/main.cc."""

    port: int = 8500
    rest_api_port: int = 0
    rest_api_timeout_in_ms: int = 30000
    rest_api_num_threads: int = field(default_factory=_four_per_cpu)
    model_name: str = "default"
    model_base_path: str = ""
    model_config_file: str = ""
    model_config_file_poll_wait_seconds: int = 0
    file_system_poll_wait_seconds: int = 1
    monitoring_config_file: str = ""
    enable_batching: bool = False
    batching_parameters_file: str = ""
    allow_version_labels_for_unavailable_models: bool = False
    max_num_load_retries: int = 5
    load_retry_interval_micros: int = 60_000_000
    grpc_max_threads: int = field(default_factory=_four_per_cpu)
    grpc_socket_path: str = ""  # also serve gRPC on the Unix socket unix:<path>
    enable_model_warmup: bool = True
    tensorflow_intra_op_parallelism: int = 0
    tensorflow_inter_op_parallelism: int = 0
    prefer_tflite_model: bool = False
    num_tflite_pools: int = field(default_factory=lambda: len(os.sched_getaffinity(0)))  # NumSchedulableCPUs
    num_tflite_interpreters_per_pool: int = 1  # accepted; batches are not split (see tflite.py)
    # Local-only: prepended to every base_path, like ServerCore::Options::storage_path_prefix, so the
    # container's `/models/mnist` can be served from `<repo>/models/mnist` with the same models.config.
    storage_path_prefix: str = ""
    unknown: list[str] = field(default_factory=list)


_FIELDS = {f.name: f for f in fields(ServerFlags) if f.name != "unknown"}


def _convert(name: str, raw: str, kind: type):
    if kind is bool:
        if raw.strip().lower() not in FLAG_BOOL_WORDS:
            raise ValueError(f"Illegal value '{raw}' specified for bool flag '{name}'")
        return parse_bool(raw)
    if kind is int:
        try:
            return int(raw)
        except ValueError:
            raise ValueError(f"Illegal value '{raw}' specified for int flag '{name}'") from None
    return raw


def _check(flags: ServerFlags) -> None:
    for name in ("grpc_max_threads", "rest_api_num_threads"):
        if getattr(flags, name) < 1:
            raise ValueError(f"--{name} must be at least 1, got {getattr(flags, name)}")


def parse_flags(argv: list[str]) -> ServerFlags:
    """Parse `--name=value` / `--name value` / `--bool_flag`; raise ValueError on a bad value."""
    flags = ServerFlags()
    args = list(argv)
    while args:
        arg = args.pop(0)
        if not arg.startswith("-"):
            flags.unknown.append(arg)
            log.warning("Ignoring positional argument %r", arg)
            continue
        name, has_value, raw = arg.lstrip("-").partition("=")
        spec = _FIELDS.get(name)
        if spec is None:
            flags.unknown.append(arg)
            log.warning("Unknown flag %s ignored (tensorflow_model_server would reject it)", arg)
            continue
        kind = type(getattr(flags, name))
        if not has_value:
            if kind is bool:
                raw = "true"
            elif args and not args[0].startswith("--"):
                raw = args.pop(0)
            else:
                raise ValueError(f"Flag --{name} needs a value")
        setattr(flags, name, _convert(name, raw, kind))
    _check(flags)
    return flags
