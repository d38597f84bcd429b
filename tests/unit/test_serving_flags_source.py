"""One flag source: Compose's tfserving command and local mode's model server get the same flags."""

import os
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from serving.flags_source import (
    CONTAINER_SERVING_DIR,
    FLAGS_FILE,
    FlagsFileError,
    flag_names,
    local_flags,
    read_flags,
)
from serving.model_server.flags import ServerFlags
from stack.services import StackSettings, local_services

REPO_ROOT = Path(__file__).resolve().parents[2]
CONTAINER_STATE_DIR = "/state"
# Flags tensorflow_model_server itself takes (the local server names its own after them); the one local-only
# flag must never reach the shared file, since the official binary rejects unknown flags.
LOCAL_ONLY_FLAGS = {"storage_path_prefix"}
TF_SERVING_FLAGS = set(ServerFlags.__dataclass_fields__) - LOCAL_ONLY_FLAGS - {"unknown"}


def compose_tfserving_argv(tmp_path: Path) -> list[str]:
    """Run docker-compose.yml's tfserving entrypoint in bash, as the container does, and capture its argv.

    The one change: /serving/ is where this checkout's serving/ is (the container mounts it there).
    """
    service = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())["services"]["tfserving"]
    shell, dash_c, script, name = service["entrypoint"]
    assert (shell, dash_c) == ("bash", "-c")
    script = script.replace("$$", "$").replace(CONTAINER_SERVING_DIR + "/", f"{REPO_ROOT}/serving/")
    fake = tmp_path / "tensorflow_model_server"
    fake.write_text('#!/bin/sh\nfor arg in "$@"; do printf "%s\\n" "$arg"; done\n')
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    result = subprocess.run(
        ["bash", "-c", script, name, *(service.get("command") or [])],
        env={**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.splitlines()


def local_mode_argv(state_dir: Path) -> list[str]:
    """The model server flags `make up` uses in local mode, its host paths written as the container's."""
    settings = StackSettings(state_dir=str(state_dir), storage_path_prefix=str(REPO_ROOT))
    args = local_services(settings)[0].args
    assert args[1:3] == ["-m", "serving.model_server"]
    back = {str(state_dir.resolve()): CONTAINER_STATE_DIR, str(REPO_ROOT / "serving"): CONTAINER_SERVING_DIR}
    mapped = []
    for flag in args[3:]:
        for host, inside in back.items():
            flag = flag.replace(f"={host}/", f"={inside}/")
        mapped.append(flag)
    return mapped


def test_compose_and_local_mode_start_the_model_server_with_the_same_flags(tmp_path):
    state_dir = tmp_path / "state"
    compose_argv = compose_tfserving_argv(tmp_path)
    local_argv = local_mode_argv(state_dir)
    assert local_argv[-1] == f"--storage_path_prefix={REPO_ROOT}"
    assert local_argv[:-1] == compose_argv
    # The two differences the issue found (batching only in Compose, TFLite only locally) are gone; TFLite
    # is now off in both, so both serve every signature (explain too) from the SavedModel.
    assert {"--enable_batching=true", "--prefer_tflite_model=false"} <= set(compose_argv)


def test_local_mode_ports_and_paths_are_this_hosts(tmp_path):
    settings = StackSettings(
        grpc_port=9500, rest_port=9501, state_dir=str(tmp_path), storage_path_prefix="/x"
    )
    args = local_services(settings)[0].args
    assert "--port=9500" in args and "--rest_api_port=9501" in args
    assert f"--model_config_file={tmp_path.resolve()}/models.config" in args
    assert f"--batching_parameters_file={REPO_ROOT}/serving/batching.config" in args
    assert "--storage_path_prefix=/x" in args


def test_shared_flags_are_real_tensorflow_model_server_flags():
    names = flag_names(read_flags())
    assert set(names) <= TF_SERVING_FLAGS, set(names) - TF_SERVING_FLAGS
    assert len(names) == len(set(names)), "a flag is given twice"


def test_flag_files_of_the_checkout_exist():
    for flag in read_flags():
        value = flag.split("=", 1)[1]
        if value.startswith(CONTAINER_SERVING_DIR + "/"):
            assert (FLAGS_FILE.parent / value[len(CONTAINER_SERVING_DIR) + 1 :]).is_file(), flag


@pytest.mark.parametrize(
    "line", ["--model_config_file=/a b", "model_config_file=/a", "--enable_batching", "--x='1'", "--x=$HOME"]
)
def test_a_line_bash_would_split_or_expand_is_refused(tmp_path, line):
    path = tmp_path / "flags"
    path.write_text(f"# comment\n\n{line}\n")
    with pytest.raises(FlagsFileError, match=":3:"):
        read_flags(path)


def test_comments_and_blank_lines_are_dropped(tmp_path):
    path = tmp_path / "flags"
    path.write_text("# head\n--port=1  # trailing\n\n--rest_api_port=2\n")
    assert read_flags(path) == ["--port=1", "--rest_api_port=2"]
    assert local_flags(state_dir=tmp_path, storage_path_prefix=tmp_path, grpc_port=7, rest_port=8, path=path)[
        :2
    ] == ["--port=7", "--rest_api_port=8"]


def test_tests_and_benchmarks_start_model_servers_with_the_shipped_behaviour_flags():
    from bench.model_server import DEFAULT_SERVER_FLAGS
    from serving.flags_source import PLACEMENT_FLAGS, behaviour_flags
    from tests.support.model_server import DEFAULT_FLAGS

    shipped = [flag for flag in read_flags() if flag_names([flag])[0] not in PLACEMENT_FLAGS]
    assert flag_names(behaviour_flags()) == flag_names(shipped)
    assert {"--enable_batching=true", "--prefer_tflite_model=false"} <= set(behaviour_flags())
    assert list(DEFAULT_FLAGS) == behaviour_flags() == DEFAULT_SERVER_FLAGS
    batching_file = next(f for f in behaviour_flags() if f.startswith("--batching_parameters_file="))
    assert Path(batching_file.split("=", 1)[1]) == REPO_ROOT / "serving" / "batching.config"


def test_an_empty_storage_path_prefix_serves_base_paths_as_written(tmp_path):
    flags = local_flags(state_dir=tmp_path, storage_path_prefix="", grpc_port=7, rest_port=8)
    assert not [flag for flag in flags if flag.startswith("--storage_path_prefix")]
