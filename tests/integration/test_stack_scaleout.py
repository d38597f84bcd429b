"""Two model servers behind one gateway in local mode (`stack up` with MODEL_SERVERS=2) under constant load.

The load split is counted by each model server itself: its Prometheus request counter
(`:tensorflow:serving:request_count`, gRPC entry point) on its own REST port.
"""

import contextlib
import json
import os
import signal
import time
import urllib.request
from pathlib import Path

import pytest

from stack.services import recorded_model_servers
from tests.integration.test_stack_lifecycle import digits, stack_env  # noqa: F401 - digits is a fixture
from tests.support.processes import free_port, run_stack_cli
from tests.support.traffic import FOLLOW_TIMEOUT_S, Traffic, export_copy

REQUEST_COUNT = ":tensorflow:serving:request_count_total{"
SPLIT_WINDOW_S = 4.0
SPLIT_RANGE = (0.30, 0.70)
BACK_IN_USE_S = 5.0  # a restarted server takes requests again within this, once `up` returns

stack = run_stack_cli


def scaleout_env(tmp_path: Path) -> dict[str, str]:
    """stack_env with MODEL_SERVERS=2 on base ports whose +10 neighbours are free too."""
    env = stack_env(tmp_path)
    env["MODEL_SERVERS"] = "2"
    for name in ("TF_SERVING_GRPC_PORT", "TF_SERVING_REST_PORT"):
        env[name] = str(
            _port_with_free_neighbour({int(env[other]) for other in env if other.endswith("_PORT")})
        )
    return env


def _port_with_free_neighbour(avoid: set[int]) -> int:
    for _ in range(50):
        port = free_port()
        if port + 10 < 65536 and not {port, port + 10} & avoid and not _listening(port + 10):
            return port
    raise RuntimeError("no free port pair")


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def predictions_served(env: dict) -> dict[str, int]:
    """Each model server's own count of gRPC requests for mnist, by name (None: it does not answer)."""
    counts = {}
    for server in recorded_model_servers(Path(env["RUN_DIR"])):
        try:
            url = f"{server['rest']}/monitoring/prometheus/metrics"
            page = urllib.request.urlopen(url, timeout=5).read().decode()
        except OSError:
            counts[server["name"]] = None
            continue
        counts[server["name"]] = int(
            sum(
                float(line.rsplit(" ", 1)[1])
                for line in page.splitlines()
                if line.startswith(REQUEST_COUNT)
                and 'entrypoint="GRPC"' in line
                and 'model_name="mnist"' in line
            )
        )
    return counts


def measure_split(env: dict, seconds: float = SPLIT_WINDOW_S) -> dict[str, float]:
    """Each server's share of the predictions served during the next `seconds`."""
    before = predictions_served(env)
    time.sleep(seconds)
    after = predictions_served(env)
    served = {name: after[name] - before[name] for name in after}
    total = sum(served.values())
    assert total > 20, served
    return {name: count / total for name, count in served.items()}


def gateway_json(env: dict, path: str) -> dict:
    return json.loads(urllib.request.urlopen(f"{env['GATEWAY_URL']}{path}", timeout=5).read())


def wait_available_everywhere(env: dict, version: int) -> float:
    """Seconds until every model server reports `version` AVAILABLE (the gateway's /v1/models backends)."""
    since = time.monotonic()
    while time.monotonic() < since + FOLLOW_TIMEOUT_S:
        backends = gateway_json(env, "/v1/models")["backends"]
        if all({"version": version, "state": "AVAILABLE"} in row["versions"] for row in backends):
            return time.monotonic() - since
        time.sleep(0.2)
    raise AssertionError(f"version {version} never AVAILABLE on every server: {backends}")


def failed(traffic: Traffic, since: float = 0.0) -> list:
    return [reply for reply in list(traffic.replies) if reply[0] >= since and reply[1] != 200]


def _check_split(split: dict[str, float]) -> None:
    low, high = SPLIT_RANGE
    assert len(split) == 2 and all(low <= share <= high for share in split.values()), split


@contextlib.contextmanager
def two_servers_under_load(tmp_path: Path, images: list):
    """`stack up` with two model servers and a load client (not started yet): yields (env, traffic, figures).

    Afterwards stops the load and the stack, prints the figures and checks that no request failed and that
    `down` stopped both servers.
    """
    env = scaleout_env(tmp_path)
    figures: dict[str, object] = {}
    result = stack(env, "up")
    assert result.returncode == 0, result.stdout + result.stderr
    traffic = Traffic(env["GATEWAY_URL"], images)
    try:
        yield env, traffic, figures
    finally:
        traffic.stopping.set()
        traffic.join(15)
        down = stack(env, "down")
        figures["requests"] = len(traffic.replies)
        figures["failed"] = len(failed(traffic))
        print("\n".join(f"{name}: {value}" for name, value in figures.items()))
    # Target zero: a request in flight on a killed server comes back UNAVAILABLE and is retried on the other.
    assert not failed(traffic), failed(traffic)[:5]
    assert len(traffic.replies) > 100
    assert down.returncode == 0 and "model_server_2" in down.stdout, down.stdout + down.stderr


@pytest.mark.slow
def test_hot_swap_over_two_model_servers_has_zero_failed_requests(tmp_path, digits):  # noqa: F811
    with two_servers_under_load(tmp_path, digits) as (env, traffic, figures):
        models = Path(env["STATE_DIR"]).parent / "models" / "mnist"
        status = stack(env, "status")
        assert status.returncode == 0 and "model_server_2" in status.stdout, status.stdout
        ready = gateway_json(env, "/readyz")
        assert sorted(ready["backends"].values()) == ["AVAILABLE", "AVAILABLE"], ready
        traffic.start()
        time.sleep(1)
        figures["split"] = split = measure_split(env)
        _check_split(split)

        export_copy(models, 2)
        figures["export -> v2 AVAILABLE on both"] = wait_available_everywhere(env, 2)
        result = stack(env, "canary", "2", "50")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "AVAILABLE on every model server" in result.stdout, result.stdout
        since = time.monotonic()
        time.sleep(4)
        versions = [v for v in traffic.versions_since(since) if v is not None]
        share = versions.count(2) / len(versions)
        assert set(versions) <= {1, 2} and 0.25 <= share <= 0.75, (share, len(versions))
        figures["canary 2 at 50% -> share of v2"] = round(share, 3)

        since = time.monotonic()
        result = stack(env, "promote", "2")  # the canary: a copy of version 1, as good by its card
        assert result.returncode == 0, result.stdout + result.stderr
        figures["promote 2 -> only v2 replies (s)"] = traffic.wait_until_only(2, since)

        since = time.monotonic()
        result = stack(env, "rollback")
        assert result.returncode == 0, result.stdout + result.stderr
        figures["rollback -> only v1 replies (s)"] = traffic.wait_until_only(1, since)
        figures["split after the swaps"] = split = measure_split(env)
        _check_split(split)


@pytest.mark.slow
def test_a_killed_model_server_costs_no_requests_and_is_used_again_once_restarted(tmp_path, digits):  # noqa: F811
    with two_servers_under_load(tmp_path, digits) as (env, traffic, figures):
        models = Path(env["STATE_DIR"]).parent / "models" / "mnist"
        run_dir = Path(env["RUN_DIR"])
        traffic.start()
        time.sleep(1)
        figures["split before"] = split = measure_split(env)
        _check_split(split)

        pid = json.loads((run_dir / "model_server_2.pid").read_text())["pid"]
        killed_at = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        time.sleep(3)
        served = predictions_served(env)
        assert served["model_server_2"] is None, served
        assert gateway_json(env, "/readyz")["status"] == "ready"
        backends = {row["address"]: row["up"] for row in gateway_json(env, "/v1/models")["backends"]}
        assert sorted(backends.values()) == [False, True], backends
        figures["requests while one server was dead (3 s)"] = len(traffic.versions_since(killed_at))

        # With a server down, the lifecycle moves no label: it must be AVAILABLE on every server.
        export_copy(models, 2)
        config_before = (Path(env["STATE_DIR"]) / "models.config").read_text()
        refused = stack(env, "canary", "2", "10")
        assert refused.returncode == 1 and "did not answer" in refused.stderr, refused.stdout + refused.stderr
        assert (Path(env["STATE_DIR"]) / "models.config").read_text() == config_before

        restarted = stack(env, "up")
        assert restarted.returncode == 0 and "started again: model_server_2" in restarted.stdout, (
            restarted.stdout + restarted.stderr
        )
        back_at = time.monotonic()
        first = predictions_served(env)["model_server_2"]
        while predictions_served(env)["model_server_2"] == first:
            assert time.monotonic() - back_at < BACK_IN_USE_S, "the restarted server takes no requests"
            time.sleep(0.05)
        figures["restarted server's first request after `up` returned (s)"] = round(
            time.monotonic() - back_at, 2
        )
        figures["split after restart"] = split = measure_split(env)
        _check_split(split)
        figures["failed from the kill on"] = len(failed(traffic, killed_at))
    assert not list(run_dir.glob("*.pid"))
