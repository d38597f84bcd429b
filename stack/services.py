"""The three services of the local (no-Docker) stack: how to start each and how to tell it is healthy."""

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from serving.flags_source import local_flags
from stack.state import live_routing_file, state_dir


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

    @classmethod
    def from_env(cls, env=os.environ) -> "StackSettings":
        """Ports, state and run directories from the environment (see README)."""
        return cls(
            grpc_port=int(env.get("TF_SERVING_GRPC_PORT", cls.grpc_port)),
            rest_port=int(env.get("TF_SERVING_REST_PORT", cls.rest_port)),
            gateway_port=int(env.get("GATEWAY_PORT", cls.gateway_port)),
            ui_port=int(env.get("UI_PORT", cls.ui_port)),
            state_dir=str(state_dir(env)),
            run_dir=env.get("RUN_DIR", cls.run_dir),
            gateway_workers=env.get("GATEWAY_WORKERS", ""),
            storage_path_prefix=env.get("STORAGE_PATH_PREFIX", str(Path.cwd())),
        )


def local_services(settings: StackSettings) -> list[Service]:
    """Model server, gateway and UI, in start order, wired to each other on loopback."""
    python = sys.executable
    gateway_url = f"http://127.0.0.1:{settings.gateway_port}"
    gateway_env = {
        "TF_SERVING_HOST": "127.0.0.1",
        "TF_SERVING_GRPC_PORT": str(settings.grpc_port),
        "TF_SERVING_REST_PORT": str(settings.rest_port),
        "ROUTING_FILE": str(live_routing_file(Path(settings.state_dir).resolve())),
    }
    if settings.gateway_workers:
        gateway_env["GATEWAY_WORKERS"] = settings.gateway_workers
    return [
        Service(
            name="model_server",
            # The flags Compose gives tfserving (serving/tfserving.flags), with this host's paths and ports.
            args=[
                python,
                "-m",
                "serving.model_server",
                *local_flags(
                    state_dir=Path(settings.state_dir),
                    storage_path_prefix=settings.storage_path_prefix,
                    grpc_port=settings.grpc_port,
                    rest_port=settings.rest_port,
                ),
            ],
            ports=(settings.grpc_port, settings.rest_port),
            health_url=f"http://127.0.0.1:{settings.rest_port}/v1/models/mnist",
            env={"TF_CPP_MIN_LOG_LEVEL": "2"},
        ),
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
