"""The three services of the local (no-Docker) stack: how to start each and how to tell it is healthy."""

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path


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
    """Ports and files of the local stack, from environment variables with the documented defaults."""

    grpc_port: int = 8500
    rest_port: int = 8501
    gateway_port: int = 8000
    ui_port: int = 7860
    model_config_file: str = "serving/models.config"
    monitoring_config_file: str = "serving/monitoring.config"
    routing_file: str = "serving/routing.json"
    run_dir: str = "run"
    gateway_workers: str = ""
    # models.config names /models/mnist as in the container; locally /models is <repo>/models.
    storage_path_prefix: str = str(Path.cwd())

    @classmethod
    def from_env(cls, env=os.environ) -> "StackSettings":
        """Ports, config files and run directory from the environment (see README)."""
        return cls(
            grpc_port=int(env.get("TF_SERVING_GRPC_PORT", cls.grpc_port)),
            rest_port=int(env.get("TF_SERVING_REST_PORT", cls.rest_port)),
            gateway_port=int(env.get("GATEWAY_PORT", cls.gateway_port)),
            ui_port=int(env.get("UI_PORT", cls.ui_port)),
            model_config_file=env.get("MODEL_CONFIG_FILE", cls.model_config_file),
            monitoring_config_file=env.get("MONITORING_CONFIG_FILE", cls.monitoring_config_file),
            routing_file=env.get("ROUTING_FILE", cls.routing_file),
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
        "ROUTING_FILE": settings.routing_file,
    }
    if settings.gateway_workers:
        gateway_env["GATEWAY_WORKERS"] = settings.gateway_workers
    return [
        Service(
            name="model_server",
            args=[
                python,
                "-m",
                "serving.model_server",
                f"--port={settings.grpc_port}",
                f"--rest_api_port={settings.rest_port}",
                f"--model_config_file={settings.model_config_file}",
                "--model_config_file_poll_wait_seconds=2",
                "--file_system_poll_wait_seconds=1",
                f"--monitoring_config_file={settings.monitoring_config_file}",
                # models.config sets `stable` before any version is loaded (TF Serving's label rule).
                "--allow_version_labels_for_unavailable_models=true",
                # A corrupt version should show its error now, not after 5 retries a minute apart.
                "--max_num_load_retries=0",
                # One image per request: two intra-op threads only fight over the two cores.
                "--tensorflow_intra_op_parallelism=1",
                # Serve a version's model.tflite (written by training/export.py) where it has one: half
                # the CNN time of the TensorFlow graph here, same answers (checked at load).
                "--prefer_tflite_model=true",
                *(
                    [f"--storage_path_prefix={settings.storage_path_prefix}"]
                    if settings.storage_path_prefix
                    else []
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
