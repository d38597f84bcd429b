"""Constant prediction traffic through a gateway, and new versions arriving as TF Serving expects them."""

import json
import os
import shutil
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.support.model_server import COMMITTED_MODEL_DIR, baseline_version

BASELINE = COMMITTED_MODEL_DIR / str(baseline_version())
CLIENT_MAX_S = 300.0
FOLLOW_TIMEOUT_S = 15.0


def export_copy(models: Path, version: int) -> None:
    """A new version arriving the way TF Serving expects: staged under a non-numeric name, then renamed."""
    staging = models / f".incoming-{version}"
    shutil.copytree(BASELINE, staging)
    os.rename(staging, models / str(version))


class Traffic(threading.Thread):
    """Sends predictions through the gateway without pause and records (time, status, version)."""

    def __init__(self, gateway_url: str, digits: list[list[list[int]]]):
        super().__init__(daemon=True)
        self.url = f"{gateway_url}/v1/predict"
        self.bodies = [json.dumps({"pixels": d}).encode() for d in digits]
        self.replies: list[tuple[float, int, int | None, str]] = []
        self.stopping = threading.Event()

    def run(self):
        started = time.monotonic()
        index = 0
        while not self.stopping.is_set() and time.monotonic() - started < CLIENT_MAX_S:
            request = urllib.request.Request(
                self.url,
                data=self.bodies[index % len(self.bodies)],
                headers={"Content-Type": "application/json"},
            )
            index += 1
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    reply = json.loads(response.read())
                    self.replies.append((time.monotonic(), response.status, reply["model"]["version"], ""))
            except urllib.error.HTTPError as exc:
                self.replies.append(
                    (time.monotonic(), exc.code, None, exc.read()[:200].decode(errors="replace"))
                )
            except OSError as exc:
                self.replies.append((time.monotonic(), 0, None, str(exc)))

    def versions_since(self, since: float) -> list[int | None]:
        return [version for at, _, version, _ in list(self.replies) if at >= since]

    def wait_until_only(self, version: int, since: float, window: int = 10) -> float:
        """Seconds from `since` until every reply came from `version` (waits until the last `window` do).

        That is the first reply after the last one from another version: during a canary the version
        already answered some requests before the switch completed.
        """
        deadline = since + FOLLOW_TIMEOUT_S
        while time.monotonic() < deadline:
            recent = self.versions_since(since)[-window:]
            if len(recent) == window and set(recent) == {version}:
                replies = [(at, v) for at, _, v, _ in list(self.replies) if at >= since]
                others = [index for index, (_, v) in enumerate(replies) if v != version]
                return replies[others[-1] + 1 if others else 0][0] - since
            time.sleep(0.05)
        raise AssertionError(
            f"replies did not follow to version {version}: {self.versions_since(since)[-20:]}"
        )
