"""The stack under Docker Compose: which Compose CLI, which project, and a health-gated `up`."""

import os
import shutil
import subprocess
import time

DEFAULT_PROJECT = "mnist-serving"
HEALTH_TIMEOUT_S = 300.0
POLL_INTERVAL_S = 2.0
LONG_RUNNING = ("tfserving", "gateway", "ui")


class ComposeError(RuntimeError):
    """Compose is missing, failed, or a service did not become healthy; the message says which."""


def compose_cli() -> list[str]:
    """`docker compose` (the v2 plugin) when it exists, else Debian's `docker-compose` 1.29."""
    try:
        plugin = subprocess.run(
            ["docker", "compose", "version"], capture_output=True, timeout=20, check=False
        )
        if plugin.returncode == 0:
            return ["docker", "compose"]
    except (OSError, subprocess.TimeoutExpired):
        pass
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    raise ComposeError("neither `docker compose` nor `docker-compose` is installed")


def project_name(env=os.environ) -> str:
    """COMPOSE_PROJECT_NAME, else mnist-serving (the file has no top-level `name:`; 1.29 rejects it)."""
    return env.get("COMPOSE_PROJECT_NAME") or DEFAULT_PROJECT


class Compose:
    """One Compose project; files from COMPOSE_FILE (both CLIs read it), else docker-compose.yml."""

    def __init__(self, env=None, cli: list[str] | None = None):
        self.env = dict(os.environ if env is None else env)
        self.cli = cli or compose_cli()
        self.project = project_name(self.env)

    def command(self, *args: str) -> list[str]:
        """The full command line of `compose <args>` for this project."""
        return [*self.cli, "-p", self.project, *args]

    def run(self, *args: str, capture: bool = False) -> subprocess.CompletedProcess:
        """Run `compose <args>`; output goes to the terminal unless captured."""
        return subprocess.run(
            self.command(*args), env=self.env, capture_output=capture, text=True, check=False
        )

    def container_ids(self) -> dict[str, str]:
        """Service name -> container id of each running or stopped container of the project."""
        ids = {}
        for service in LONG_RUNNING:
            result = self.run("ps", "-q", service, capture=True)
            if result.returncode == 0 and result.stdout.strip():
                ids[service] = result.stdout.split()[0]
        return ids

    def health(self) -> dict[str, str]:
        """Service name -> Docker health status (`healthy`, `starting`, ...) or `missing`."""
        ids = self.container_ids()
        states = {}
        for service in LONG_RUNNING:
            if service not in ids:
                states[service] = "missing"
                continue
            result = subprocess.run(
                ["docker", "inspect", "-f", "{{if .State.Health}}{{.State.Health.Status}}{{else}}"
                 "{{.State.Status}}{{end}}", ids[service]],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            states[service] = result.stdout.strip() or "missing"
        return states

    def wait_healthy(self, timeout_s: float = HEALTH_TIMEOUT_S) -> None:
        """Wait until every long-running service is healthy; raise with the states and logs if not."""
        deadline = time.monotonic() + timeout_s
        states: dict[str, str] = {}
        while time.monotonic() < deadline:
            states = self.health()
            if all(state == "healthy" for state in states.values()):
                return
            if any(state in ("unhealthy", "exited", "dead") for state in states.values()):
                break
            time.sleep(POLL_INTERVAL_S)
        raise ComposeError(f"services not healthy: {states}\n{self.logs_tail()}")

    def logs_tail(self, lines: int = 40) -> str:
        """The last lines of every service's log, for error messages."""
        result = self.run("logs", "--no-color", "--tail", str(lines), capture=True)
        return result.stdout + result.stderr

    def up(self, timeout_s: float = HEALTH_TIMEOUT_S, build: bool = True) -> None:
        """Build, start, and wait for every healthcheck (depends_on orders the start)."""
        # `up --wait` is v2-only; waiting here serves both CLIs.
        result = self.run("up", "-d", *(["--build"] if build else []))
        if result.returncode != 0:
            raise ComposeError(
                f"`{' '.join(self.command('up'))}` failed (exit {result.returncode}); if tensorflow/serving "
                "cannot be pulled here, use the local model server's image: "
                "COMPOSE_FILE=docker-compose.yml:docker-compose.local-server.yml"
            )
        self.wait_healthy(timeout_s)

    def down(self) -> None:
        """Remove the project's containers and networks; images, bind mounts and named volumes stay.

        Not `--volumes`: that would also delete the named `feedback` volume, the users' corrections. No
        Dockerfile here declares a VOLUME (a unit test checks), so no anonymous volume is left behind.
        """
        result = self.run("down", "--remove-orphans")
        if result.returncode != 0:
            raise ComposeError(f"`{' '.join(self.command('down'))}` failed (exit {result.returncode})")
