"""Start the real services as child processes for tests, wait until ready, and dump logs on failure."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 15.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServiceProcess:
    """A service started with `python -m ...`, its output captured to a log file."""

    def __init__(
        self,
        name: str,
        args: list[str],
        log_dir: Path,
        env: dict[str, str] | None = None,
        cwd: Path = REPO_ROOT,
    ):
        self.name = name
        self.log_path = Path(log_dir) / f"{name}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
        self.process = subprocess.Popen(
            [sys.executable, *args],
            cwd=cwd,
            env=full_env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log_tail(self, chars: int = 4000) -> str:
        """The last `chars` characters of the service's output."""
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-chars:]

    def wait_http(self, url: str, timeout_s: float = READY_TIMEOUT_S, status: int = 200) -> None:
        """Poll `url` until it answers `status`; raise with the log tail if it never does."""
        deadline = time.monotonic() + timeout_s
        last_error = "no attempt"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == status:
                        return
                    last_error = f"HTTP {response.status}"
            except urllib.error.HTTPError as exc:
                last_error = f"HTTP {exc.code}"
            except OSError as exc:
                last_error = str(exc)
            time.sleep(0.2)
        raise RuntimeError(
            f"{self.name} not ready at {url} after {timeout_s}s ({last_error}):\n{self.log_tail()}"
        )

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        """Signal the process group, wait, and kill it if it does not exit in time."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, sig)
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(STOP_TIMEOUT_S)
            except ProcessLookupError:
                pass
        self._log.close()
        return self.process.returncode


def run_module(
    module: str, env: dict, *args: str, cwd: Path = REPO_ROOT, timeout: float = 240
) -> subprocess.CompletedProcess:
    """`python -m <module> <args>` from `cwd` with `env`; output captured, never raising on its exit code."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_stack_cli(
    env: dict, *args: str, cwd: Path = REPO_ROOT, timeout: float = 240
) -> subprocess.CompletedProcess:
    """`python -m stack <args>`, what `make up/down/promote/...` run, from `cwd`; output captured."""
    return run_module("stack", env, *args, cwd=cwd, timeout=timeout)
