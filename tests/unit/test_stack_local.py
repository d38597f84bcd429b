"""Local stack bookkeeping: PID files survive only while their process lives; ports are checked first."""

import json
import os
import socket
import subprocess
import sys

import pytest

from stack import local
from stack.services import StackSettings, local_services


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
