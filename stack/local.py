"""Run the stack as local processes: PID files and logs under a run directory, health-gated start."""

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from stack.services import (
    Service,
    StackSettings,
    forget_model_servers,
    local_services,
    model_server_places,
    record_model_servers,
    recorded_model_servers,
)

HEALTH_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 20.0
POLL_INTERVAL_S = 0.25


class StackError(RuntimeError):
    """The stack could not be started or stopped; the message says why."""


def _pid_file(run_dir: Path, name: str) -> Path:
    return run_dir / f"{name}.pid"


def _log_file(run_dir: Path, name: str) -> Path:
    return run_dir / "logs" / f"{name}.log"


def _read_pid(run_dir: Path, name: str) -> dict | None:
    try:
        return json.loads(_pid_file(run_dir, name).read_text())
    except (OSError, ValueError):
        return None


def _start_time(pid: int) -> str | None:
    """The kernel's start time of `pid` (field 22 of /proc/<pid>/stat), to detect PID reuse."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def running_pid(run_dir: Path, name: str) -> int | None:
    """The PID of `name` if the process its PID file names is still the one we started."""
    record = _read_pid(run_dir, name)
    if record is None:
        return None
    started = _start_time(record["pid"])
    return record["pid"] if started is not None and started == record["start_time"] else None


def port_in_use(port: int) -> bool:
    """True when something already listens on 127.0.0.1:`port`."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def is_healthy(url: str) -> bool:
    """True when `url` answers 200 within two seconds."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False


def _spawn(service: Service, run_dir: Path) -> int:
    log_path = _log_file(run_dir, service.name)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} starting {service.name}\n".encode())
        log.flush()
        process = subprocess.Popen(
            service.args,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **service.env},
            start_new_session=True,  # its own process group, so `down` stops workers too
        )
    record = {"pid": process.pid, "start_time": _start_time(process.pid), "args": service.args}
    _pid_file(run_dir, service.name).write_text(json.dumps(record))
    return process.pid


def _wait_healthy(service: Service, run_dir: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if running_pid(run_dir, service.name) is None:
            raise StackError(f"{service.name} exited during start-up:\n{tail(run_dir, service.name)}")
        if is_healthy(service.health_url):
            return
        time.sleep(POLL_INTERVAL_S)
    raise StackError(
        f"{service.name} not healthy at {service.health_url} after {timeout_s:.0f} s:\n"
        f"{tail(run_dir, service.name)}"
    )


def tail(run_dir: Path, name: str, lines: int = 30) -> str:
    """The last `lines` lines of a service's log."""
    try:
        return "\n".join(_log_file(run_dir, name).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def up(settings: StackSettings, timeout_s: float = HEALTH_TIMEOUT_S) -> list[Service]:
    """Start every service that is not running, each after the one before is healthy; return those started.

    With the rest of the stack running, model servers that are not (one died) are started again alone.
    """
    run_dir = Path(settings.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    everything = local_services(settings)
    running = [s.name for s in everything if running_pid(run_dir, s.name)]
    if len(running) == len(everything):
        raise StackAlreadyRunning(
            "the stack is already running (" + ", ".join(running) + "); "
            "`make status` shows it, `make down` stops it"
        )
    services = [s for s in everything if s.name not in running]
    restarting = bool(running) and all(s.name.startswith("model_server") for s in services)
    if running and not restarting:
        raise StackError(f"part of the stack is running ({', '.join(running)}); run `make down` first")
    recorded = {row.get("name") for row in recorded_model_servers(run_dir) or []}
    if restarting and not {s.name for s in services} <= recorded:
        raise StackError(
            f"the running stack has {len(recorded)} model server(s); its gateway knows only those: "
            "run `make down` first to change MODEL_SERVERS"
        )
    for service in services:
        taken = [port for port in service.ports if port_in_use(port)]
        if taken:
            raise StackError(
                f"port {taken[0]} for {service.name} is already in use by another program; "
                "stop it or choose other ports (see README: TF_SERVING_GRPC_PORT, "
                "TF_SERVING_REST_PORT, GATEWAY_PORT, UI_PORT; model server i adds 10 i to both of its own)"
            )
    if not restarting:
        record_model_servers(run_dir, model_server_places(settings))
    try:
        for group in _start_groups(services):
            for service in group:
                _spawn(service, run_dir)
            for service in group:
                _wait_healthy(service, run_dir, timeout_s)
    except BaseException:
        if restarting:
            _stop(run_dir, services)
        else:
            down(settings)
        raise
    return services


def _start_groups(services: list[Service]) -> list[list[Service]]:
    """The model servers start together (they depend on nothing); the gateway, then the UI, each after."""
    groups: list[list[Service]] = []
    for service in services:
        together = (
            groups
            and service.name.startswith("model_server")
            and groups[-1][0].name.startswith("model_server")
        )
        if together:
            groups[-1].append(service)
        else:
            groups.append([service])
    return groups


class StackAlreadyRunning(StackError):
    """A second `up` while the whole stack runs: nothing was started."""


def _stop_pid(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.killpg(pid, signal.SIGKILL)


def down(settings: StackSettings) -> list[str]:
    """Stop what `up` started (process groups from the PID files), in reverse order."""
    run_dir = Path(settings.run_dir)
    stopped = _stop(run_dir, local_services(settings))
    forget_model_servers(run_dir)
    return stopped


def _stop(run_dir: Path, services: list[Service]) -> list[str]:
    stopped = []
    for service in reversed(services):
        pid = running_pid(run_dir, service.name)
        if pid is not None:
            _stop_pid(pid)
            stopped.append(service.name)
        _pid_file(run_dir, service.name).unlink(missing_ok=True)
    return stopped


def status(settings: StackSettings) -> list[tuple[str, int | None, bool, str]]:
    """(name, pid, healthy, health URL) for each service."""
    run_dir = Path(settings.run_dir)
    rows = []
    for service in local_services(settings):
        pid = running_pid(run_dir, service.name)
        rows.append(
            (service.name, pid, pid is not None and is_healthy(service.health_url), service.health_url)
        )
    return rows
