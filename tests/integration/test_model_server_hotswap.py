"""Hot-swap under load: a new version takes over with no failed request; broken versions change nothing."""

import http.client
import json
import shutil
import threading
import time

import grpc
import numpy as np
import pytest
from tensorflow_serving.apis import prediction_service_pb2_grpc

from contract import layout
from tests.support.model_server import (
    copy_model,
    default_model_version_dir,
    official_predict_request,
    start_model_server,
)

POLL_S = 1
LOAD_BUDGET_S = 30.0  # generous: loading and warming a version on a busy 2-core machine
MAX_CLIENT_S = 180.0  # clients stop by themselves even if the test fails half-way
IMAGE = np.random.default_rng(3).random((1, 28, 28, 1), dtype=np.float32)


class Clients:
    """One gRPC and one REST client sending predict requests back to back until stopped."""

    def __init__(self, server):
        self.server = server
        self.stop = threading.Event()
        self.failures: list[str] = []
        self.grpc_versions: list[tuple[float, int]] = []
        self.rest_ok = 0
        self.threads = [threading.Thread(target=self._grpc_loop), threading.Thread(target=self._rest_loop)]

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)

    def _running(self, started: float) -> bool:
        return not self.stop.is_set() and time.monotonic() - started < MAX_CLIENT_S

    def _grpc_loop(self):
        started = time.monotonic()
        request = official_predict_request(IMAGE)
        with grpc.insecure_channel(self.server.grpc_target) as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            while self._running(started):
                try:
                    reply = stub.Predict(request, timeout=30)
                    self.grpc_versions.append((time.monotonic(), reply.model_spec.version.value))
                except grpc.RpcError as exc:
                    self.failures.append(f"gRPC {exc.code()}: {exc.details()}")

    def _rest_loop(self):
        started = time.monotonic()
        body = json.dumps({"instances": IMAGE.tolist()})
        connection = http.client.HTTPConnection("127.0.0.1", self.server.rest_port, timeout=30)
        while self._running(started):
            try:
                connection.request(
                    "POST", "/v1/models/mnist:predict", body, {"Content-Type": "application/json"}
                )
                response = connection.getresponse()
                payload = response.read()
                if response.status == 200:
                    self.rest_ok += 1
                else:
                    self.failures.append(f"REST {response.status}: {payload[:200]!r}")
            except OSError as exc:
                self.failures.append(f"REST connection: {exc}")
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", self.server.rest_port, timeout=30)
        connection.close()

    def latest_version(self) -> int | None:
        return self.grpc_versions[-1][1] if self.grpc_versions else None


def version_status(server) -> dict[int, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=10)
    connection.request("GET", "/v1/models/mnist")
    body = json.loads(connection.getresponse().read())
    connection.close()
    return {int(entry["version"]): entry for entry in body["model_version_status"]}


def wait_for(predicate, timeout_s: float, what: str) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("hotswap")
    base = root / "models" / "mnist"
    copy_model(default_model_version_dir(), base, 1)
    running = start_model_server(
        root,
        model_base_path=base,
        extra_flags=[f"--file_system_poll_wait_seconds={POLL_S}", "--max_num_load_retries=0"],
    )
    running.base = base
    yield running
    running.stop()


def test_hot_swap_under_load_fails_no_request(server):
    with Clients(server) as clients:
        wait_for(lambda: clients.latest_version() == 1 and clients.rest_ok > 0, 30, "traffic on version 1")
        copy_model(default_model_version_dir(), server.base, 2)  # atomic rename into place
        switched_after_s = wait_for(
            lambda: clients.latest_version() == 2, POLL_S + LOAD_BUDGET_S, "version 2 to take traffic"
        )
        swap_time = time.monotonic()
        time.sleep(1.0)  # keep going after the swap, while version 1 is unloaded
    assert clients.failures == []
    versions = [v for _, v in clients.grpc_versions]
    assert versions[0] == 1 and versions[-1] == 2
    assert all(v == 2 for t, v in clients.grpc_versions if t > swap_time), "version 1 served after the swap"
    assert clients.rest_ok > 10 and len(versions) > 10
    assert switched_after_s <= POLL_S + LOAD_BUDGET_S
    status = version_status(server)
    assert status[2]["state"] == "AVAILABLE" and status[1]["state"] == "END"
    assert status[1]["status"]["error_code"] == "OK"


def _half_written(base, version: int) -> None:
    target = base / str(version)
    target.mkdir()
    saved_model = layout.SAVED_MODEL_FILE
    shutil.copy(default_model_version_dir() / saved_model, target / saved_model)  # no variables/


def _corrupt(base, version: int) -> None:
    target = base / str(version)
    shutil.copytree(default_model_version_dir(), target)
    (target / layout.SAVED_MODEL_FILE).write_bytes(b"\x00garbage, not a SavedModel\xff" * 10)


@pytest.mark.parametrize(
    ("version", "make_broken"), [(3, _half_written), (4, _corrupt)], ids=["half_written", "corrupt"]
)
def test_broken_version_reports_error_and_leaves_serving_intact(server, version, make_broken):
    with Clients(server) as clients:
        wait_for(lambda: clients.latest_version() == 2, 30, "traffic on version 2")
        make_broken(server.base, version)
        wait_for(
            lambda: version_status(server).get(version, {}).get("state") == "END",
            POLL_S + LOAD_BUDGET_S,
            f"version {version} to fail",
        )
        time.sleep(0.5)
    assert clients.failures == []
    assert {v for _, v in clients.grpc_versions} == {2}
    status = version_status(server)
    assert status[version]["status"]["error_code"] != "OK"
    assert status[version]["status"]["error_message"]
    assert status[2]["state"] == "AVAILABLE"
    assert f"Loading servable: {{name: mnist version: {version}}} failed" in server.process.log_tail(100_000)
