"""Gateway configuration, read from environment variables in this one place."""

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields

from contract.feedback import DEFAULT_FEEDBACK_DATABASE
from contract.mnist import MODEL_NAME, STABLE_LABEL
from contract.state import ROUTING_FILE, STATE_DIR
from contract.targets import TargetError, channel_target

TRANSPORTS = ("grpc", "rest")


@dataclass(frozen=True)
class GatewayConfig:
    """Every setting the gateway reads; defaults suit a model server on localhost."""

    serving_host: str = "127.0.0.1"
    grpc_port: int = 8500
    # A full gRPC target (contract/targets.py): unix:/run/tfserving/grpc.sock (TF Serving's
    # --grpc_socket_path), several servers (127.0.0.1:8500,127.0.0.1:8510) or dns:///name:8500; wins over
    # host and port for gRPC.
    grpc_target_override: str = ""
    rest_port: int = 8501
    transport: str = "grpc"
    model_name: str = MODEL_NAME
    upstream_timeout_s: float = 2.0
    upstream_retries: int = 3
    upstream_backoff_s: float = 0.05
    max_upload_bytes: int = 5 * 1024 * 1024
    max_request_bytes: int = 32 * 1024 * 1024
    # 2048 x 2048: thousands of times the 784 pixels the model sees, and a bounded decode (~16 MB RGBA).
    max_image_pixels: int = 4_194_304
    max_batch_size: int = 64
    default_label: str = STABLE_LABEL
    routing_file: str = f"{STATE_DIR}/{ROUTING_FILE}"  # the live state the lifecycle writes
    label_cache_s: float = 1.0
    retry_after_s: int = 1
    # Where corrections (POST /v1/feedback) go: a SQLAlchemy URL, e.g. postgresql://user@host/db for
    # several replicas; empty = a SQLite file under data/.
    feedback_database_url: str = ""

    def __post_init__(self):
        if self.transport not in TRANSPORTS:
            raise ValueError(f"TF_SERVING_TRANSPORT must be one of {TRANSPORTS}, not {self.transport!r}")
        for name in (
            "grpc_port",
            "rest_port",
            "max_upload_bytes",
            "max_request_bytes",
            "max_image_pixels",
            "max_batch_size",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, not {getattr(self, name)}")
        if self.grpc_target_override:
            try:
                channel_target(self.grpc_target_override)
            except TargetError as exc:
                raise ValueError(f"TF_SERVING_GRPC_TARGET: {exc}") from None
        if self.upstream_timeout_s <= 0 or self.upstream_retries < 0 or self.upstream_backoff_s < 0:
            raise ValueError("upstream timeout must be > 0 and retries/backoff >= 0")

    @property
    def grpc_target(self) -> str:
        """The gRPC channel target: TF_SERVING_GRPC_TARGET (a list as ipv4:...), else host:port."""
        return channel_target(self.grpc_target_override or f"{self.serving_host}:{self.grpc_port}")

    @property
    def rest_url(self) -> str:
        """Base URL of the model server's REST API: one server (TF_SERVING_GRPC_TARGET is gRPC's only)."""
        return f"http://{self.serving_host}:{self.rest_port}"

    @property
    def feedback_database(self) -> str:
        """The feedback database URL: FEEDBACK_DATABASE_URL, else the SQLite file under data/."""
        return self.feedback_database_url or f"sqlite:///{DEFAULT_FEEDBACK_DATABASE}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "GatewayConfig":
        """Build the config from environment variables (ENV_VARS maps each to its field)."""
        environ = os.environ if environ is None else environ
        types = {field.name: field.type for field in fields(cls)}
        values = {}
        for env_name, field_name in ENV_VARS.items():
            raw = environ.get(env_name)
            if raw is None or raw.strip() == "" and field_name != "default_label":
                continue
            kind = types[field_name]
            try:
                values[field_name] = kind(raw.strip()) if kind in (int, float) else raw.strip()
            except ValueError as exc:
                raise ValueError(f"{env_name}={raw!r} is not a valid {kind.__name__}") from exc
        return cls(**values)


# Environment variable -> config field. The README documents each one.
ENV_VARS = {
    "TF_SERVING_HOST": "serving_host",
    "TF_SERVING_GRPC_PORT": "grpc_port",
    "TF_SERVING_GRPC_TARGET": "grpc_target_override",
    "TF_SERVING_REST_PORT": "rest_port",
    "TF_SERVING_TRANSPORT": "transport",
    "MODEL_NAME": "model_name",
    "UPSTREAM_TIMEOUT_S": "upstream_timeout_s",
    "UPSTREAM_RETRIES": "upstream_retries",
    "UPSTREAM_BACKOFF_S": "upstream_backoff_s",
    "MAX_UPLOAD_BYTES": "max_upload_bytes",
    "MAX_REQUEST_BYTES": "max_request_bytes",
    "MAX_IMAGE_PIXELS": "max_image_pixels",
    "MAX_BATCH_SIZE": "max_batch_size",
    "DEFAULT_LABEL": "default_label",
    "ROUTING_FILE": "routing_file",
    "LABEL_CACHE_S": "label_cache_s",
    "RETRY_AFTER_S": "retry_after_s",
    "FEEDBACK_DATABASE_URL": "feedback_database_url",
}
