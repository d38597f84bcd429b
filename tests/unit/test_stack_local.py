"""Local stack bookkeeping: PID files survive only while their process lives; ports are checked first."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from stack import local
from stack.services import StackSettings, local_services

COMMITTED_CONFIG = Path(__file__).resolve().parents[2] / "serving" / "models.config"


def test_pid_file_of_a_live_process_is_running(tmp_path):
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        record = {"pid": process.pid, "start_time": local._start_time(process.pid), "args": []}
        (tmp_path / "gateway.pid").write_text(json.dumps(record))
        assert local.running_pid(tmp_path, "gateway") == process.pid
    finally:
        process.kill()
        process.wait()
    assert local.running_pid(tmp_path, "gateway") is None


def test_reused_pid_is_not_mistaken_for_ours(tmp_path):
    # Our own PID with a different start time stands for a PID the kernel gave to another process.
    record = {"pid": os.getpid(), "start_time": "1", "args": []}
    (tmp_path / "ui.pid").write_text(json.dumps(record))
    assert local.running_pid(tmp_path, "ui") is None


def test_garbage_pid_file_is_not_running(tmp_path):
    (tmp_path / "model_server.pid").write_text("not json")
    assert local.running_pid(tmp_path, "model_server") is None


def test_port_in_use_sees_a_listener():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert local.port_in_use(port)
    assert not local.port_in_use(port)


def test_services_are_wired_to_each_other_from_settings():
    settings = StackSettings.from_env(
        {
            "TF_SERVING_GRPC_PORT": "9500",
            "TF_SERVING_REST_PORT": "9501",
            "GATEWAY_PORT": "9000",
            "UI_PORT": "9860",
        }
    )
    model_server, gateway, ui = local_services(settings)
    assert "--port=9500" in model_server.args and "--rest_api_port=9501" in model_server.args
    assert gateway.env["TF_SERVING_GRPC_PORT"] == "9500" and "127.0.0.1:9000" in gateway.args
    assert ui.env["GATEWAY_URL"] == "http://127.0.0.1:9000" and ui.env["UI_PORT"] == "9860"


def test_down_with_nothing_running_stops_nothing(tmp_path):
    assert local.down(StackSettings(run_dir=str(tmp_path))) == []


@pytest.mark.parametrize("name", ["model_server", "gateway", "ui"])
def test_every_service_has_a_health_url(name):
    services = {service.name: service for service in local_services(StackSettings())}
    assert services[name].health_url.startswith("http://127.0.0.1:")


def test_local_model_server_serves_the_live_state_not_the_committed_config(tmp_path):
    settings = StackSettings(state_dir=str(tmp_path / "state"))
    model_server, gateway, _ = local_services(settings)
    live = tmp_path.resolve() / "state"
    assert f"--model_config_file={live}/models.config" in model_server.args
    assert not [arg for arg in model_server.args if arg.endswith("serving/models.config")]
    assert gateway.env["ROUTING_FILE"] == f"{live}/routing.json"


def test_state_dir_comes_from_state_dir_variable(tmp_path):
    assert StackSettings.from_env({"STATE_DIR": str(tmp_path)}).state_dir == str(tmp_path)
    assert StackSettings.from_env({}).state_dir == "state"


@pytest.mark.parametrize("mode", ["local", "docker"])
def test_up_seeds_the_live_state_before_starting_anything(tmp_path, monkeypatch, mode):
    from stack import __main__ as cli

    seen = []

    def record(*_args, **_kwargs):
        seen.append((tmp_path / "state" / "models.config").is_file())
        return []

    class RecordingCompose:
        def __init__(self, *_args, **_kwargs):
            pass

        up = staticmethod(record)

    monkeypatch.setattr(local, "up", record)
    monkeypatch.setattr(cli, "Compose", RecordingCompose)
    settings = StackSettings(state_dir=str(tmp_path / "state"), run_dir=str(tmp_path / "run"))
    assert cli.cmd_up(settings, mode) == 0
    assert seen == [True]
    assert (tmp_path / "state" / "models.config").read_text() == COMMITTED_CONFIG.read_text()


def _fake_cli(directory, name: str, exit_code: int) -> None:
    path = directory / name
    path.write_text(f"#!/bin/sh\nexit {exit_code}\n")
    path.chmod(0o755)


@pytest.mark.parametrize(
    ("plugin_exit", "has_v1", "expected"),
    [(0, True, ["docker", "compose"]), (1, True, ["docker-compose"]), (0, False, ["docker", "compose"])],
)
def test_compose_cli_is_the_v2_plugin_when_present_else_docker_compose(
    tmp_path, monkeypatch, plugin_exit, has_v1, expected
):
    from stack import compose

    _fake_cli(tmp_path, "docker", plugin_exit)
    if has_v1:
        _fake_cli(tmp_path, "docker-compose", 0)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert compose.compose_cli() == expected


def test_no_compose_cli_is_a_clear_error(tmp_path, monkeypatch):
    from stack import compose

    _fake_cli(tmp_path, "docker", 1)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(compose.ComposeError, match="docker-compose"):
        compose.compose_cli()


def test_compose_commands_name_the_project():
    from stack.compose import Compose

    assert Compose({}, cli=["docker-compose"]).command("up", "-d") == [
        "docker-compose",
        "-p",
        "mnist-serving",
        "up",
        "-d",
    ]
    assert Compose({"COMPOSE_PROJECT_NAME": "other"}, cli=["x"]).command("ps")[:3] == ["x", "-p", "other"]


def test_compose_gets_absolute_mount_sources(tmp_path, monkeypatch):
    from stack import __main__ as cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MODELS_DIR", "my-models")
    env = cli.compose_env(StackSettings(state_dir="my-state"))
    # A relative source would be a named volume to Compose, not the directory the lifecycle writes.
    assert env["STATE_DIR"] == str(tmp_path / "my-state") and env["MODELS_DIR"] == str(tmp_path / "my-models")


def test_a_failed_compose_up_is_an_error_that_names_the_local_server_override(tmp_path):
    from stack.compose import Compose, ComposeError

    _fake_cli(tmp_path, "compose", 1)
    with pytest.raises(ComposeError, match="docker-compose.local-server.yml"):
        Compose({}, cli=[str(tmp_path / "compose")]).up(timeout_s=1)


def test_model_servers_get_ports_ten_apart_and_the_gateway_gets_them_all():
    settings = StackSettings.from_env({"MODEL_SERVERS": "3", "TF_SERVING_GRPC_PORT": "9500"})
    services = local_services(settings)
    assert [s.name for s in services] == ["model_server", "model_server_2", "model_server_3", "gateway", "ui"]
    assert [s.ports for s in services[:3]] == [(9500, 8501), (9510, 8511), (9520, 8521)]
    assert "--port=9510" in services[1].args and "--rest_api_port=8511" in services[1].args
    assert services[1].health_url == "http://127.0.0.1:8511/v1/models/mnist"
    gateway = services[3]
    assert gateway.env["TF_SERVING_GRPC_TARGET"] == "127.0.0.1:9500,127.0.0.1:9510,127.0.0.1:9520"
    # Every model server serves the same live config.
    configs = {arg for s in services[:3] for arg in s.args if arg.startswith("--model_config_file=")}
    assert len(configs) == 1


def test_model_servers_start_together_then_gateway_then_ui():
    services = local_services(StackSettings(model_servers=2))
    assert [[s.name for s in group] for group in local._start_groups(services)] == [
        ["model_server", "model_server_2"],
        ["gateway"],
        ["ui"],
    ]


@pytest.mark.parametrize("count", ["0", "10"])
def test_model_servers_out_of_range_is_refused(count):
    with pytest.raises(ValueError, match="MODEL_SERVERS"):
        StackSettings.from_env({"MODEL_SERVERS": count})


@pytest.mark.parametrize("name", ["MODEL_SERVERS", "TF_SERVING_GRPC_PORT", "GATEWAY_PORT"])
def test_a_setting_that_is_not_a_number_is_refused_by_name(name):
    with pytest.raises(ValueError, match=f"{name} must be a whole number, not 'x'"):
        StackSettings.from_env({name: "x"})


def test_down_and_status_see_the_servers_up_recorded(tmp_path):
    from stack.services import model_server_places, record_model_servers, recorded_model_servers

    record_model_servers(tmp_path, model_server_places(StackSettings(model_servers=2)))
    assert [row["grpc"] for row in recorded_model_servers(tmp_path)] == ["127.0.0.1:8500", "127.0.0.1:8510"]
    settings = StackSettings.from_env({"RUN_DIR": str(tmp_path)})
    assert settings.model_servers == 2
    assert local.down(settings) == [] and recorded_model_servers(tmp_path) is None
    assert StackSettings.from_env({"RUN_DIR": str(tmp_path)}).model_servers == 1


def test_up_with_only_part_of_the_stack_running_starts_nothing_unless_only_model_servers_are_missing(
    tmp_path,
):
    # Our own process stands for a running UI; the gateway is not running, so this is no model server restart.
    record = {"pid": os.getpid(), "start_time": local._start_time(os.getpid()), "args": []}
    (tmp_path / "ui.pid").write_text(json.dumps(record))
    with pytest.raises(local.StackError, match="part of the stack is running"):
        local.up(StackSettings(run_dir=str(tmp_path), model_servers=2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ui.pid"]


def test_more_model_servers_than_the_running_stack_has_is_refused(tmp_path):
    from stack.services import model_server_places, record_model_servers

    record_model_servers(tmp_path, model_server_places(StackSettings(model_servers=2)))
    record = {"pid": os.getpid(), "start_time": local._start_time(os.getpid()), "args": []}
    for name in ("model_server", "model_server_2", "gateway", "ui"):
        (tmp_path / f"{name}.pid").write_text(json.dumps(record))
    with pytest.raises(local.StackError, match="run `make down` first to change MODEL_SERVERS"):
        local.up(StackSettings(run_dir=str(tmp_path), model_servers=3))
