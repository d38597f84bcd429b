"""End to end in local mode: `stack up`, then export, promote, canary and roll back under constant traffic."""

import json
import os
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.support.processes import REPO_ROOT, free_port, run_stack_cli
from tests.support.traffic import BASELINE, FOLLOW_TIMEOUT_S, Traffic, export_copy
from training.dataset import DEFAULT_DATA_DIR
from training.idx import read_idx


def stack_env(tmp_path: Path) -> dict[str, str]:
    models = tmp_path / "models" / "mnist"
    models.mkdir(parents=True)
    shutil.copytree(BASELINE, models / "1")
    # The live state, seeded before `up` (ensure_state keeps an existing live config): the stack's model
    # server reads it and the lifecycle commands edit it.
    state = tmp_path / "state"
    state.mkdir()
    (state / "models.config").write_text(
        "model_config_list {\n  config {\n    name: 'mnist'\n"
        "    base_path: '/models/mnist'\n    model_platform: 'tensorflow'\n"
        "    model_version_policy { all {} }\n"
        "    version_labels { key: 'stable' value: 1 }\n  }\n}\n"
    )
    gateway_port = free_port()
    return {
        **os.environ,
        "STACK_MODE": "local",
        # As `make up` does with the repo: the config says /models/mnist, which is <prefix>/models/mnist.
        "STORAGE_PATH_PREFIX": str(tmp_path),
        "RUN_DIR": str(tmp_path / "run"),
        "STATE_DIR": str(state),
        "TF_SERVING_GRPC_PORT": str(free_port()),
        "TF_SERVING_REST_PORT": str(free_port()),
        "GATEWAY_PORT": str(gateway_port),
        "UI_PORT": str(free_port()),
        "GATEWAY_URL": f"http://127.0.0.1:{gateway_port}",
        "GATEWAY_WORKERS": "2",
    }


stack = run_stack_cli


@pytest.fixture(scope="module")
def digits():
    images = read_idx(REPO_ROOT / DEFAULT_DATA_DIR / "t10k-images-idx3-ubyte")[:20]
    return [image.tolist() for image in images]


@pytest.mark.slow
def test_lifecycle_under_traffic_has_zero_failed_requests(tmp_path, digits):
    env = stack_env(tmp_path)
    models = Path(env["STATE_DIR"]).parent / "models" / "mnist"
    timings: dict[str, float] = {}
    started = time.monotonic()
    result = stack(env, "up")
    assert result.returncode == 0, result.stdout + result.stderr
    timings["make up"] = time.monotonic() - started
    traffic = Traffic(env["GATEWAY_URL"], digits)
    try:
        second = stack(env, "up")
        assert second.returncode == 0 and "already running" in second.stdout
        traffic.start()
        time.sleep(2)
        assert set(traffic.versions_since(0)) == {1}

        export_copy(models, 2)
        since = time.monotonic()
        deadline = since + FOLLOW_TIMEOUT_S
        while time.monotonic() < deadline:
            states = json.loads(urllib.request.urlopen(f"{env['GATEWAY_URL']}/v1/models", timeout=5).read())
            if any(row["version"] == 2 and row["state"] == "AVAILABLE" for row in states["versions"]):
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"version 2 never became AVAILABLE: {states}")
        timings["export -> v2 AVAILABLE"] = time.monotonic() - since
        time.sleep(1.5)
        assert set(traffic.versions_since(since)) == {1}, "an unpromoted version took default traffic"

        for step, args, version in [("promote 2", ("promote", "2"), 2)]:
            since = time.monotonic()
            result = stack(env, *args)
            assert result.returncode == 0, result.stdout + result.stderr
            timings[f"{step} -> replies v{version}"] = traffic.wait_until_only(version, since)

        export_copy(models, 3)
        result = stack(env, "canary", "3", "50")
        assert result.returncode == 0, result.stdout + result.stderr
        since = time.monotonic()  # the command returns once the canary label resolves
        time.sleep(4)
        split = [v for v in traffic.versions_since(since) if v is not None]
        share = split.count(3) / len(split)
        assert set(split) <= {2, 3} and 0.25 <= share <= 0.75, (share, len(split))
        timings["canary 3 at 50% -> share of v3"] = share

        since = time.monotonic()
        result = stack(env, "canary", "3", "0")
        assert result.returncode == 0, result.stdout + result.stderr
        timings["canary off -> replies v2"] = traffic.wait_until_only(2, since)

        since = time.monotonic()
        result = stack(env, "rollback")
        assert result.returncode == 0, result.stdout + result.stderr
        timings["rollback -> replies v1"] = traffic.wait_until_only(1, since)
    finally:
        traffic.stopping.set()
        traffic.join(15)
        groups = _process_groups(Path(env["RUN_DIR"]))
        down = stack(env, "down")
        print("\n".join(f"{name}: {value:.2f}" for name, value in timings.items()))
    failures = [reply for reply in traffic.replies if reply[1] != 200]
    print(f"requests: {len(traffic.replies)}, failed: {len(failures)}")
    assert not failures, failures[:5]
    assert len(traffic.replies) > 100
    assert down.returncode == 0, down.stdout + down.stderr
    assert len(groups) == 3
    assert not list(Path(env["RUN_DIR"]).glob("*.pid"))
    assert not [group for group in groups if _group_alive(group)], "processes left after down"
    for port in ("TF_SERVING_GRPC_PORT", "TF_SERVING_REST_PORT", "GATEWAY_PORT", "UI_PORT"):
        assert not _listening(int(env[port])), f"{port} still open after down"


def test_port_taken_is_a_clear_error_and_starts_nothing(tmp_path):
    import socket

    env = stack_env(tmp_path)
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", int(env["GATEWAY_PORT"])))
        blocker.listen()
        result = stack(env, "up", timeout=60)
    assert result.returncode == 1
    assert f"port {env['GATEWAY_PORT']}" in result.stderr and "already in use" in result.stderr
    assert not list((tmp_path / "run").glob("*.pid"))
    assert not _listening(int(env["TF_SERVING_REST_PORT"]))


def _process_groups(run_dir: Path) -> list[int]:
    return [json.loads(p.read_text())["pid"] for p in sorted(run_dir.glob("*.pid"))]


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0
