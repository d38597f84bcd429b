"""`python -m stack promote|canary|rollback|retire` against a real model server: confirm, or fail and undo.

The commands run in a throw-away git repository holding the committed serving/models.config and
.gitignore, with the live state in its default place (state/), so `git status` shows whether a
promotion touched anything tracked. The model server reads the live config, as `make up` starts it.
"""

import os
import shutil
import subprocess
import time
from pathlib import Path

import grpc
import numpy as np
import pytest
from tensorflow_serving.apis import (
    get_model_status_pb2,
    model_service_pb2_grpc,
    prediction_log_pb2,
    prediction_service_pb2_grpc,
)

from contract import layout
from contract.mnist import STABLE_LABEL
from stack.model_config import mnist_entry, parse_config, render_config
from stack.state import ensure_state, write_atomically
from tests.support.model_server import (
    copy_model,
    default_model_version_dir,
    official_predict_request,
    start_model_server,
)
from tests.support.processes import REPO_ROOT, free_port, run_stack_cli

IMAGE = np.random.default_rng(5).random((1, 28, 28, 1), dtype=np.float32)
COMMAND_TIMEOUT_S = 180
SLOW_WARMUP_RECORDS = 600  # TF Serving replays at most 1000; 600 take about 12 s here
SLOW_WARMUP_BATCH = 32
SHORT_TIMEOUT_S = "3"  # LIFECYCLE_TIMEOUT_S for the slow version: well inside its warm-up
SPECIFIC_ONE = (
    "model_config_list {\n  config {\n    name: 'mnist'\n    base_path: '/models/mnist'\n"
    "    model_platform: 'tensorflow'\n    model_version_policy { specific { versions: 1 } }\n"
    "    version_labels { key: 'stable' value: 1 }\n  }\n}\n"
)


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """A git clone-alike: the committed default config and ignore rules, version 1, the live state.

    The config is the committed one with `stable` pointing at version 1, the one version this repo holds.
    """
    root = tmp_path_factory.mktemp("clone")
    (root / "serving").mkdir()
    committed = (REPO_ROOT / "serving" / "models.config").read_text()
    config = parse_config(committed)
    mnist_entry(config).version_labels[STABLE_LABEL] = 1
    (root / "serving" / "models.config").write_text(render_config(config, committed))
    shutil.copyfile(REPO_ROOT / ".gitignore", root / ".gitignore")
    copy_model(default_model_version_dir(), root / "models" / "mnist", 1)
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "default")
    ensure_state(root / "state", root / "serving" / "models.config")
    return root


@pytest.fixture(scope="module")
def server(repo, tmp_path_factory):
    running = start_model_server(
        tmp_path_factory.mktemp("logs"),
        model_config_file=repo / "state" / "models.config",
        extra_flags=[f"--storage_path_prefix={repo}", "--model_config_file_poll_wait_seconds=1"],
    )
    yield running
    running.stop()


def stack(repo: Path, server, *args: str, **env: str) -> subprocess.CompletedProcess:
    """`python -m stack ...` run the way `make` runs it, from the (throw-away) repository root."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "TF_SERVING_HOST": "127.0.0.1"}
    for name in ("STATE_DIR", "STORAGE_PATH_PREFIX", "LIFECYCLE_TIMEOUT_S"):
        full_env.pop(name, None)
    full_env["TF_SERVING_GRPC_PORT"] = str(server.grpc_port) if server else str(free_port())
    full_env.update(env)
    return run_stack_cli(full_env, *args, cwd=repo, timeout=COMMAND_TIMEOUT_S)


def served_by_label(server, label: str) -> int | str:
    """The version a Predict by `label` reports in its model_spec, or the gRPC error code's name."""
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        try:
            return stub.Predict(
                official_predict_request(IMAGE, label=label), timeout=30
            ).model_spec.version.value
        except grpc.RpcError as exc:
            return exc.code().name


def states(server) -> dict[int, str]:
    with grpc.insecure_channel(server.grpc_target) as channel:
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = "mnist"
        reply = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(request, timeout=30)
    name = get_model_status_pb2.ModelVersionStatus.State.Name
    return {row.version: name(row.state) for row in reply.model_version_status}


def wait_until(predicate, what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def live_bytes(repo: Path) -> tuple[bytes, bytes | None]:
    routing = repo / "state" / "routing.json"
    return (repo / "state" / "models.config").read_bytes(), routing.read_bytes() if routing.exists() else None


def check(result: subprocess.CompletedProcess, code: int = 0) -> str:
    assert result.returncode == code, result.stdout + result.stderr
    return result.stdout + result.stderr


def test_promote_canary_rollback_retire_confirm_on_the_server_and_leave_git_clean(repo, server):
    committed = (repo / "serving" / "models.config").read_bytes()
    for version in (2, 3):
        copy_model(default_model_version_dir(), repo / "models" / "mnist", version)  # policy `all` loads them

    out = check(stack(repo, server, "promote", "2"))
    assert "version 2 is AVAILABLE on the model server" in out and "label 'stable' serves version 2" in out
    assert served_by_label(server, "stable") == 2  # the command returned only once this held

    check(stack(repo, server, "canary", "3", "25"))
    assert served_by_label(server, "canary") == 3
    assert '"canary_percent": 25' in (repo / "state" / "routing.json").read_text()
    check(stack(repo, server, "canary", "3", "0"))
    assert served_by_label(server, "canary") == "INVALID_ARGUMENT"  # Unrecognized servable version label

    assert "stable is version 1" in check(stack(repo, server, "rollback"))
    assert served_by_label(server, "stable") == 1

    refused = check(stack(repo, server, "retire", "3"), code=1)
    assert "SPECIFIC=1" in refused and "loads versions by rule" in refused
    out = check(stack(repo, server, "retire", "3", "--switch-to-specific"))
    assert "switched from all { } to specific [1, 2]" in out
    assert states(server)[3] == "END"
    assert "labelled stable" in check(stack(repo, server, "retire", "1"), code=1)

    # Nothing tracked changed and the state dir is ignored (the versions this test exported are its own).
    assert git(repo, "status", "--porcelain", "--", ".", ":!models") == ""
    assert (repo / "serving" / "models.config").read_bytes() == committed


@pytest.fixture
def specific_one(repo, server):
    """Live config `specific { versions: 1 }`, `stable: 1`, applied by the server."""
    write_atomically(repo / "state" / "models.config", "# test\n" + SPECIFIC_ONE)
    wait_until(
        lambda: (
            served_by_label(server, "stable") == 1
            and all(state == "END" for version, state in states(server).items() if version != 1)
        ),
        "the server to apply `specific { versions: 1 }`",
    )
    return live_bytes(repo)


def write_slow_warmup(version_dir: Path) -> None:
    """Many warm-up records: the version loads for real, slowly, replaying them before AVAILABLE."""
    import tensorflow as tf

    images = np.random.default_rng(7).random((SLOW_WARMUP_BATCH, 28, 28, 1), dtype=np.float32)
    entry = prediction_log_pb2.PredictionLog()
    entry.predict_log.request.CopyFrom(official_predict_request(images))
    record = entry.SerializeToString()
    path = layout.warmup_path(version_dir)
    staged = path.with_name(".slow")
    with tf.io.TFRecordWriter(str(staged)) as writer:
        for _ in range(SLOW_WARMUP_RECORDS):
            writer.write(record)
    staged.replace(path)


def test_version_still_loading_at_the_deadline_fails_and_restores_the_config(repo, server, specific_one):
    base = repo / "models" / "mnist"
    staging = base / ".incoming-5"
    shutil.copytree(default_model_version_dir(), staging)
    write_slow_warmup(staging)
    staging.rename(base / "5")
    result = stack(repo, server, "promote", "5", LIFECYCLE_TIMEOUT_S=SHORT_TIMEOUT_S)
    err = check(result, code=1)
    assert "timed out after 3 s waiting for version 5 to be AVAILABLE: version 5 is still LOADING on" in err
    assert "nothing was changed" in err
    assert live_bytes(repo) == specific_one  # the policy it wrote to load version 5 was put back
    assert 5 in states(server)  # the server did start loading it
    assert served_by_label(server, "stable") == 1


def test_version_that_fails_to_load_fails_and_restores_the_config(repo, server, specific_one):
    target = repo / "models" / "mnist" / "6"
    staging = target.with_name(".incoming-6")
    shutil.copytree(default_model_version_dir(), staging)
    (staging / layout.SAVED_MODEL_FILE).write_bytes(b"\x00not a SavedModel\xff" * 10)
    staging.rename(target)
    err = check(stack(repo, server, "promote", "6"), code=1)
    assert "version 6 failed to load on the model server" in err and "nothing was changed" in err
    assert live_bytes(repo) == specific_one
    assert states(server)[6] == "END"
    assert served_by_label(server, "stable") == 1


@pytest.mark.parametrize(
    "args", [("promote", "2"), ("canary", "2", "10"), ("rollback",), ("canary", "2", "0")]
)
def test_model_server_down_fails_and_changes_nothing(repo, args):
    if not (repo / "models" / "mnist" / "2").exists():
        copy_model(default_model_version_dir(), repo / "models" / "mnist", 2)
    (repo / "state" / "routing.json").write_text('{"canary_percent": 0, "stable_history": [1]}\n')
    before = live_bytes(repo)
    err = check(stack(repo, None, *args), code=1)
    assert "did not answer GetModelStatus" in err and "UNAVAILABLE" in err and "nothing was changed" in err
    assert live_bytes(repo) == before
