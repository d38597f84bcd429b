"""A Docker engine for the Compose tests: the running one, or a dockerd this test run starts and stops."""

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

START_TIMEOUT_S = 60.0


def engine_answers() -> bool:
    """True when `docker info` reaches an engine."""
    if not shutil.which("docker"):
        return False
    try:
        return (
            subprocess.run(["docker", "info"], capture_output=True, timeout=20, check=False).returncode == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        return False


def can_start_engine() -> bool:
    """True when this process could start dockerd itself (root, dockerd and docker installed)."""
    return os.geteuid() == 0 and bool(shutil.which("dockerd")) and bool(shutil.which("docker"))


class StartedEngine:
    """A dockerd started by the tests; stop() ends exactly that process."""

    def __init__(self, log_path: Path):
        self.log_path = log_path
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(
                ["dockerd"], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not engine_answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"dockerd did not start; see {log_path}:\n{self.log_tail()}")
            time.sleep(0.5)

    def log_tail(self, lines: int = 20) -> str:
        """The end of dockerd's log."""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 30 s, to the dockerd this object started."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
