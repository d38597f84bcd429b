"""Start the whole local stack for UI tests: model server, gateway (gunicorn) and the Gradio UI."""

from dataclasses import dataclass
from pathlib import Path

from tests.support.model_server import RunningModelServer, copy_model, start_model_server
from tests.support.processes import REPO_ROOT, ServiceProcess, free_port

GUNICORN_CONF = REPO_ROOT / "gateway" / "gunicorn.conf.py"
# A UI test stack gets one gateway worker with a few threads: enough for a browser and a client,
# and light on a 2-core machine.
GATEWAY_WORKER_ARGS = ("--workers", "1", "--threads", "4")
UI_GATEWAY_TIMEOUT_S = 10.0


@dataclass
class RunningStack:
    """The three services of a local stack and their base URLs."""

    model_server: RunningModelServer
    gateway: ServiceProcess
    gateway_url: str
    ui: ServiceProcess | None
    ui_url: str | None

    def stop(self) -> None:
        """Stop the UI, then the gateway, then the model server."""
        for service in (self.ui, self.gateway):
            if service is not None:
                service.stop()
        self.model_server.stop()

    @property
    def feedback_database(self) -> Path:
        """The SQLite file this stack's gateway stores corrections in."""
        return feedback_database(self.gateway.log_path.parent, self.gateway.name)

    def logs(self) -> str:
        """The tail of every service log, to print when a test fails."""
        services = [self.model_server.process, self.gateway, *([self.ui] if self.ui else [])]
        return "\n".join(f"===== {service.name} =====\n{service.log_tail()}" for service in services)


def feedback_database(log_dir: Path, name: str = "gateway") -> Path:
    """The SQLite file a test gateway named `name` stores corrections in (under its log directory)."""
    return Path(log_dir).resolve() / f"{name}-feedback.sqlite3"


def start_gateway(
    log_dir: Path,
    model_server: RunningModelServer,
    *,
    name: str = "gateway",
    env: dict[str, str] | None = None,
) -> tuple[ServiceProcess, str]:
    """Start the gateway under gunicorn on a free port against `model_server`; wait for /readyz."""
    port = free_port()
    args = ["-m", "gunicorn"]
    if GUNICORN_CONF.is_file():
        args += ["-c", str(GUNICORN_CONF)]
    args += ["--bind", f"127.0.0.1:{port}", *GATEWAY_WORKER_ARGS, "gateway:create_app()"]
    gateway_env = {
        "TF_SERVING_HOST": "127.0.0.1",
        "TF_SERVING_GRPC_PORT": str(model_server.grpc_port),
        "TF_SERVING_REST_PORT": str(model_server.rest_port),
        # An absent routing file means 0% canary; keep the repo's live state/routing.json out of tests.
        "ROUTING_FILE": str(Path(log_dir) / "routing.json"),
        # Corrections go to a SQLite file of this stack, never to the repo's data/feedback.sqlite3.
        "FEEDBACK_DATABASE_URL": f"sqlite:///{feedback_database(log_dir, name)}",
        **(env or {}),
    }
    gateway = ServiceProcess(name, args, Path(log_dir), env=gateway_env)
    url = f"http://127.0.0.1:{port}"
    try:
        gateway.wait_http(f"{url}/readyz")
    except BaseException:
        gateway.stop()
        raise
    return gateway, url


def start_ui(
    log_dir: Path, gateway_url: str, *, name: str = "ui", timeout_s: float = UI_GATEWAY_TIMEOUT_S
) -> tuple[ServiceProcess, str]:
    """Start `python -m ui` on a free port talking to `gateway_url`; wait until the page is served."""
    port = free_port()
    ui_env = {
        "GATEWAY_URL": gateway_url,
        "UI_HOST": "127.0.0.1",
        "UI_PORT": str(port),
        "GATEWAY_TIMEOUT_S": str(timeout_s),
        "GRADIO_ANALYTICS_ENABLED": "False",
    }
    ui = ServiceProcess(name, ["-m", "ui"], Path(log_dir), env=ui_env)
    url = f"http://127.0.0.1:{port}"
    try:
        ui.wait_http(f"{url}/")
    except BaseException:
        ui.stop()
        raise
    return ui, url


def start_stack(log_dir: Path, *, with_ui: bool = True, version_dir: Path | None = None) -> RunningStack:
    """Model server, gateway and UI, each ready before the next starts.

    The model server serves a copy of the committed model, or of `version_dir` under its own number.
    """
    log_dir = Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    if version_dir is None:
        model_server = start_model_server(log_dir)
    else:
        base = log_dir / "models" / "mnist"
        copy_model(version_dir, base, int(Path(version_dir).name))
        model_server = start_model_server(log_dir, model_base_path=base)
    gateway = ui = None
    try:
        gateway, gateway_url = start_gateway(log_dir, model_server)
        ui, ui_url = start_ui(log_dir, gateway_url) if with_ui else (None, None)
    except BaseException:
        for service in (ui, gateway):
            if service is not None:
                service.stop()
        model_server.stop()
        raise
    return RunningStack(model_server, gateway, gateway_url, ui, ui_url)
