"""Start-up errors are clear and fatal like tensorflow_model_server; SIGTERM drains; batching is correct."""

import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
import pytest
from tensorflow_serving.apis import prediction_service_pb2_grpc

from tests.support.model_server import (
    copy_model,
    default_model_version_dir,
    official_predict_request,
    start_model_server,
    write_model_config,
)
from tests.support.processes import ServiceProcess

EXIT_TIMEOUT_S = 60


def run_to_exit(tmp_path, args: list[str]) -> tuple[int, str]:
    process = ServiceProcess("model_server", ["-m", "serving.model_server", "--port=0", *args], tmp_path)
    try:
        code = process.process.wait(EXIT_TIMEOUT_S)
    finally:
        process.stop()
    return code, process.log_path.read_text()


@pytest.mark.parametrize(
    ("config_text", "flags", "message"),
    [
        (
            'model_config_list { config { name: "mnist" base_path: "/x" typo: 1 } }',
            [],
            "Invalid protobuf file",
        ),
        (
            'model_config_list { config { name: "mnist" base_path: "models/mnist" } }',
            [],
            "Expected model mnist to have an absolute path or URI; got base_path()=models/mnist",
        ),
        (
            'model_config_list { config { name: "mnist" base_path: "BASE" '
            'version_labels { key: "stable" value: 1 } } }',
            [],
            "Request to assign label to version 1 of model mnist, which is not currently available",
        ),
    ],
)
def test_bad_config_stops_startup_with_clear_message(tmp_path, config_text, flags, message):
    base = tmp_path / "models" / "mnist"
    base.mkdir(parents=True)
    config = tmp_path / "models.config"
    config.write_text(config_text.replace("BASE", str(base)))
    code, log = run_to_exit(tmp_path, [f"--model_config_file={config}", *flags])
    assert code != 0
    assert message in log
    assert "Traceback" not in log


def test_missing_model_flags_stop_startup(tmp_path):
    code, log = run_to_exit(tmp_path, [])
    assert code != 0 and "Both --model_base_path and --model_config_file are empty" in log


def test_bad_monitoring_config_stops_startup(tmp_path):
    bad = tmp_path / "monitoring.config"
    bad.write_text("prometheus_config { enabled: true }")
    code, log = run_to_exit(tmp_path, [f"--model_base_path={tmp_path}", f"--monitoring_config_file={bad}"])
    assert code != 0 and "Invalid protobuf file" in log and "enabled" in log


@pytest.fixture(scope="module")
def batching_server(tmp_path_factory, repo_root):
    root = tmp_path_factory.mktemp("batching")
    base = root / "models" / "mnist"
    copy_model(default_model_version_dir(), base, 1)
    config = write_model_config(root / "models.config", base)
    server = start_model_server(
        root,
        model_config_file=config,
        extra_flags=[
            "--enable_batching",
            f"--batching_parameters_file={repo_root / 'serving' / 'batching.config'}",
        ],
    )
    yield server
    server.stop()


def test_batched_concurrent_requests_get_their_own_answers(batching_server):
    images = np.random.default_rng(11).random((24, 28, 28, 1), dtype=np.float32)
    with grpc.insecure_channel(batching_server.grpc_target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        whole = stub.Predict(official_predict_request(images), timeout=60)
        expected = np.asarray(whole.outputs["probabilities"].float_val).reshape(24, 10)
        with ThreadPoolExecutor(8) as pool:
            replies = list(
                pool.map(
                    lambda i: stub.Predict(official_predict_request(images[i : i + 1]), timeout=60), range(24)
                )
            )
    got = np.stack([np.asarray(r.outputs["probabilities"].float_val) for r in replies])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert "Batching enabled" in batching_server.process.log_tail(100_000)


def test_sigterm_drains_requests_and_exits_cleanly(batching_server):
    request = official_predict_request(np.zeros((1, 28, 28, 1), dtype=np.float32))
    outcomes: list[tuple[float, str]] = []  # (start time, outcome)
    lock = threading.Lock()

    def client():
        deadline = time.monotonic() + 60
        with grpc.insecure_channel(batching_server.grpc_target) as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            while time.monotonic() < deadline:
                # Timed once the call is handed to gRPC: a thread held up between taking the time and
                # sending would otherwise count a call that reached the server after shutdown as "before".
                call = stub.Predict.future(request, timeout=30)
                started = time.monotonic()
                try:
                    call.result()
                    outcome = "OK"
                except grpc.RpcError as exc:
                    outcome = exc.code().name
                with lock:
                    outcomes.append((started, outcome))
                if outcome == "UNAVAILABLE":  # the server stopped accepting: done
                    return

    threads = [threading.Thread(target=client) for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(1.5)
    signalled_at = time.monotonic()
    batching_server.process.process.send_signal(signal.SIGTERM)
    code = batching_server.process.process.wait(EXIT_TIMEOUT_S)
    for thread in threads:
        thread.join(timeout=60)
    assert code == 0
    before = [outcome for started, outcome in outcomes if started < signalled_at]
    assert before and set(before) == {"OK"}, "a request sent before SIGTERM did not complete"
    # Requests sent while the server shuts down are refused; none may hang or get a wrong answer.
    assert {outcome for started, outcome in outcomes if started >= signalled_at} <= {
        "OK",
        "UNAVAILABLE",
        "CANCELLED",
    }
    log = batching_server.process.log_tail()
    assert "Shutting down: draining requests in flight" in log and "Server stopped" in log
