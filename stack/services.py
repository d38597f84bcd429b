"""The services of the local (no-Docker) stack: how to start each and how to tell it is healthy.

One or more model servers (MODEL_SERVERS), the gateway and the UI. `up` records the model servers it
starts in the run directory (model_servers.json), the one list `down`, `status` and the lifecycle
commands read afterwards.
"""

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from contract.targets import target_for
from serving.flags_source import local_flags
from stack.state import live_routing_file, state_dir, write_atomically

MODEL_SERVERS_FILE = "model_servers.json"  # in the run directory
# Model server i (from 0) listens on TF_SERVING_GRPC_PORT + 10 i and TF_SERVING_REST_PORT + 10 i:
# 8500/8501, 8510/8511, 8520/8521, ...
PORT_STEP = 10
MAX_MODEL_SERVERS = 9  # 8500 + 90 stays clear of the gateway's and UI's ports


@dataclass(frozen=True)
class Service:
    """One long-running process of the stack."""

    name: str
    args: list[str]
    ports: tuple[int, ...]
    health_url: str
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StackSettings:
    """Ports and directories of the stack, from environment variables with the documented defaults."""

    grpc_port: int = 8500
    rest_port: int = 8501
    gateway_port: int = 8000
    ui_port: int = 7860
    # Live models.config and routing.json (stack/state.py); `make up` seeds it first.
    state_dir: str = str(state_dir({}))
    run_dir: str = "run"
    gateway_workers: str = ""
    # models.config names /models/mnist as in the container; locally /models is <repo>/models.
    storage_path_prefix: str = str(Path.cwd())
    model_servers: int = 1

    def __post_init__(self):
        if not 1 <= self.model_servers <= MAX_MODEL_SERVERS:
            raise ValueError(f"MODEL_SERVERS must be 1..{MAX_MODEL_SERVERS}, not {self.model_servers}")

    @classmethod
    def from_env(cls, env=os.environ) -> "StackSettings":
        """Ports, state and run directories from the environment (see README).

        MODEL_SERVERS defaults to the number the running stack's `up` recorded, else 1, so `make down`
        and `make status` see every server `make up MODEL_SERVERS=N` started.
        """
        run_dir = env.get("RUN_DIR", cls.run_dir)
        recorded = recorded_model_servers(Path(run_dir))
        return cls(
            grpc_port=_whole("TF_SERVING_GRPC_PORT", env.get("TF_SERVING_GRPC_PORT", cls.grpc_port)),
            rest_port=_whole("TF_SERVING_REST_PORT", env.get("TF_SERVING_REST_PORT", cls.rest_port)),
            gateway_port=_whole("GATEWAY_PORT", env.get("GATEWAY_PORT", cls.gateway_port)),
            ui_port=_whole("UI_PORT", env.get("UI_PORT", cls.ui_port)),
            state_dir=str(state_dir(env)),
            run_dir=run_dir,
            gateway_workers=env.get("GATEWAY_WORKERS", ""),
            storage_path_prefix=env.get("STORAGE_PATH_PREFIX", str(Path.cwd())),
            model_servers=_whole(
                "MODEL_SERVERS", env.get("MODEL_SERVERS") or (len(recorded) if recorded else 1)
            ),
        )


def _whole(name: str, value) -> int:
    """The integer setting `name`; ValueError naming it when `value` is not a whole number."""
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, not {value!r}") from None


@dataclass(frozen=True)
class ModelServerPlace:
    """Where one local model server listens."""

    name: str
    grpc_port: int
    rest_port: int

    @property
    def grpc_address(self) -> str:
        """host:port of its gRPC API."""
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def rest_url(self) -> str:
        """Base URL of its REST API."""
        return f"http://127.0.0.1:{self.rest_port}"


def model_server_places(settings: StackSettings) -> list[ModelServerPlace]:
    """The local model servers: `model_server`, then `model_server_2`, ... on ports PORT_STEP apart."""
    return [
        ModelServerPlace(
            "model_server" if index == 0 else f"model_server_{index + 1}",
            settings.grpc_port + PORT_STEP * index,
            settings.rest_port + PORT_STEP * index,
        )
        for index in range(settings.model_servers)
    ]


def record_model_servers(run_dir: Path, places: list[ModelServerPlace]) -> None:
    """Write the run directory's list of model servers (name, gRPC address, REST URL)."""
    rows = [{"name": p.name, "grpc": p.grpc_address, "rest": p.rest_url} for p in places]
    write_atomically(Path(run_dir) / MODEL_SERVERS_FILE, json.dumps(rows, indent=2) + "\n")


def recorded_model_servers(run_dir: Path) -> list[dict] | None:
    """The model servers the running local stack's `up` recorded, or None (no local stack, or unreadable)."""
    try:
        rows = json.loads((Path(run_dir) / MODEL_SERVERS_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(rows, list) or not all(isinstance(row, dict) and "grpc" in row for row in rows):
        return None
    return rows or None


def forget_model_servers(run_dir: Path) -> None:
    """Remove the record (`down`)."""
    (Path(run_dir) / MODEL_SERVERS_FILE).unlink(missing_ok=True)


def local_services(settings: StackSettings) -> list[Service]:
    """Model servers, gateway and UI, in start order, wired to each other on loopback.

    Every model server serves the same models directory and the same live models.config; the gateway
    gets them all as one gRPC target (a comma-separated list) and balances with gRPC's round_robin.
    """
    python = sys.executable
    gateway_url = f"http://127.0.0.1:{settings.gateway_port}"
    places = model_server_places(settings)
    gateway_env = {
        "TF_SERVING_HOST": "127.0.0.1",
        "TF_SERVING_GRPC_PORT": str(settings.grpc_port),
        # REST has one base URL: with TF_SERVING_TRANSPORT=rest the gateway talks to the first server.
        "TF_SERVING_REST_PORT": str(settings.rest_port),
        "TF_SERVING_GRPC_TARGET": target_for([place.grpc_address for place in places]),
        "ROUTING_FILE": str(live_routing_file(Path(settings.state_dir).resolve())),
    }
    if settings.gateway_workers:
        gateway_env["GATEWAY_WORKERS"] = settings.gateway_workers
    model_servers = [
        Service(
            name=place.name,
            # The flags Compose gives tfserving (serving/tfserving.flags), with this host's paths and ports.
            args=[
                python,
                "-m",
                "serving.model_server",
                *local_flags(
                    state_dir=Path(settings.state_dir),
                    storage_path_prefix=settings.storage_path_prefix,
                    grpc_port=place.grpc_port,
                    rest_port=place.rest_port,
                ),
            ],
            ports=(place.grpc_port, place.rest_port),
            health_url=f"{place.rest_url}/v1/models/mnist",
            env={"TF_CPP_MIN_LOG_LEVEL": "2"},
        )
        for place in places
    ]
    return [
        *model_servers,
        Service(
            name="gateway",
            args=[
                python,
                "-m",
                "gunicorn",
                "-c",
                "gateway/gunicorn.conf.py",
                "--bind",
                f"127.0.0.1:{settings.gateway_port}",
                "gateway:create_app()",
            ],
            ports=(settings.gateway_port,),
            health_url=f"{gateway_url}/readyz",
            env=gateway_env,
        ),
        Service(
            name="ui",
            args=[python, "-m", "ui"],
            ports=(settings.ui_port,),
            health_url=f"http://127.0.0.1:{settings.ui_port}/",
            env={
                "GATEWAY_URL": gateway_url,
                "UI_PORT": str(settings.ui_port),
                "GRADIO_ANALYTICS_ENABLED": "False",
            },
        ),
    ]
