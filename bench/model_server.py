"""Benchmark predict latency (p50, p99) and throughput: local model server over gRPC and REST vs in-process.

Starts `python -m serving.model_server` on free localhost ports with a copy of the model, sends a bounded
number of one-image predict requests at each concurrency, and calls the same SavedModel in-process in the
same run as the baseline. Usage: python bench/model_server.py [--requests 500] [--concurrency 1 8]
"""

import argparse
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
from contract import layout  # noqa: E402 - after the repo root is on the path
from serving.flags_source import behaviour_flags  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

GRPC_P50_TARGET_MS = 2.0
PACED_PAUSE_S = 0.003
PACED = f"+{PACED_PAUSE_S * 1000:g} ms idle"
# What `make up` and Compose run (serving/tfserving.flags): batching, one intra-op thread, TFLite off
# (the SavedModel serves, so `explain` is served too).
DEFAULT_SERVER_FLAGS = behaviour_flags()
# The in-process baseline uses the same thread count as the server.
INTRA_OP_THREADS = 1
READY_TIMEOUT_S = 120.0


def default_model_dir() -> Path:
    """The lowest version under models/mnist, or the smoke export while no version is committed."""
    for base in (REPO_ROOT / "models" / "mnist", Path("/tmp/smoke_models")):
        versions = {
            n: p for n, p in layout.list_versions(base).items() if (p / layout.SAVED_MODEL_FILE).exists()
        }
        if versions:
            return versions[min(versions)]
    raise SystemExit("no SavedModel found under models/mnist or /tmp/smoke_models")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(model_dir: Path, workdir: Path, extra: list[str]) -> tuple[subprocess.Popen, int, int]:
    base = workdir / "mnist"
    shutil.copytree(model_dir, base / "1")
    grpc_port, rest_port = free_port(), free_port()
    log = open(workdir / "model_server.log", "wb")  # noqa: SIM115 - lives as long as the server
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "serving.model_server",
            f"--port={grpc_port}",
            f"--rest_api_port={rest_port}",
            "--model_name=mnist",
            f"--model_base_path={base}",
            *extra,
        ],
        cwd=REPO_ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"model server exited:\n{(workdir / 'model_server.log').read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{rest_port}/v1/models/mnist", timeout=2) as reply:
                if b"AVAILABLE" in reply.read():
                    return process, grpc_port, rest_port
        except OSError:
            pass
        time.sleep(0.2)
    process.kill()
    raise SystemExit("model server did not become ready")


def measure(call, requests: int, concurrency: int, warmup: int, pause_s: float = 0.0) -> dict:
    """Run `call(worker_index)` `requests` times over `concurrency` threads; latency percentiles and rate.

    `pause_s` idles each thread before every call (not timed), as a caller with other work between its
    calls would: the gateway spends ~3 ms on HTTP and preprocessing between two predict calls.
    """
    for _ in range(warmup):
        call(0)
    latencies: list[float] = []
    lock = threading.Lock()
    per_worker = [
        requests // concurrency + (1 if i < requests % concurrency else 0) for i in range(concurrency)
    ]

    def worker(index: int) -> None:
        local = []
        for _ in range(per_worker[index]):
            if pause_s:
                time.sleep(pause_s)
            started = time.perf_counter()
            call(index)
            local.append(time.perf_counter() - started)
        with lock:
            latencies.extend(local)

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(worker, range(concurrency)))
    elapsed = time.perf_counter() - started
    ms = np.asarray(latencies) * 1e3
    return {
        "p50": float(np.percentile(ms, 50)),
        "p99": float(np.percentile(ms, 99)),
        "rps": len(ms) / elapsed,
    }


def grpc_caller(grpc_port: int, image: np.ndarray, concurrency: int):
    import grpc
    from tensorflow.core.framework import types_pb2
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    request = predict_pb2.PredictRequest()
    request.model_spec.name = "mnist"
    proto = request.inputs["image"]
    proto.dtype = types_pb2.DT_FLOAT
    for size in image.shape:
        proto.tensor_shape.dim.add().size = size
    proto.tensor_content = image.tobytes()  # what tf.make_tensor_proto sends
    channels = [grpc.insecure_channel(f"127.0.0.1:{grpc_port}") for _ in range(concurrency)]
    stubs = [prediction_service_pb2_grpc.PredictionServiceStub(channel) for channel in channels]

    def call(index: int) -> None:
        reply = stubs[index].Predict(request, timeout=30)
        assert len(reply.outputs["probabilities"].float_val) == 10

    return call, channels


def rest_caller(rest_port: int, image: np.ndarray, concurrency: int):
    body = json.dumps({"instances": image.tolist()})
    connections = [http.client.HTTPConnection("127.0.0.1", rest_port, timeout=30) for _ in range(concurrency)]

    def call(index: int) -> None:
        connection = connections[index]
        connection.request("POST", "/v1/models/mnist:predict", body, {"Content-Type": "application/json"})
        reply = connection.getresponse()
        payload = reply.read()
        assert reply.status == 200, payload[:200]

    return call, connections


def in_process_caller(model_dir: Path, image: np.ndarray):
    """The plain way to call a SavedModel: tf.saved_model.load and its serving_default signature."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(INTRA_OP_THREADS)  # same as the server

    signature = tf.saved_model.load(str(model_dir)).signatures["serving_default"]

    def call(index: int) -> None:
        outputs = signature(image=tf.constant(image))
        assert outputs["probabilities"].numpy().shape == (1, 10)

    return call


def in_process_tflite_caller(model_dir: Path, image: np.ndarray):
    """The plain way to call the version's model.tflite: an ai-edge-litert interpreter's signature runner."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(layout.tflite_path(model_dir)), num_threads=1)
    runner = interpreter.get_signature_runner("serving_default")

    def call(index: int) -> None:
        assert runner(image=image)["probabilities"].shape == (1, 10)

    return call


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=None, help="SavedModel version directory")
    parser.add_argument("--requests", type=int, default=500, help="requests per row of the table")
    parser.add_argument("--warmup", type=int, default=50, help="unmeasured requests before each row")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8], help="client threads")
    parser.add_argument("--server-flag", action="append", default=[], help="extra model server flag")
    args = parser.parse_args()
    model_dir = args.model_dir or default_model_dir()
    image = np.random.default_rng(0).random((1, 28, 28, 1), dtype=np.float32)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-model-server-") as tmp:
        process, grpc_port, rest_port = start_server(
            model_dir, Path(tmp), DEFAULT_SERVER_FLAGS + args.server_flag
        )
        try:
            for concurrency in args.concurrency:
                call, closers = grpc_caller(grpc_port, image, concurrency)
                rows.append(("gRPC", concurrency, measure(call, args.requests, concurrency, args.warmup)))
                if concurrency == 1:
                    paced = measure(call, args.requests, 1, args.warmup, PACED_PAUSE_S)
                    rows.append((f"gRPC {PACED}", 1, paced))
                for channel in closers:
                    channel.close()
                call, closers = rest_caller(rest_port, image, concurrency)
                rows.append(("REST", concurrency, measure(call, args.requests, concurrency, args.warmup)))
                for connection in closers:
                    connection.close()
        finally:
            process.terminate()
            process.wait(30)
    # In-process after the server stopped, so the baseline does not share the CPUs with it: the
    # SavedModel, and the model.tflite that --prefer_tflite_model would serve (off in the shipped flags,
    # measured to show what leaving TFLite off costs).
    baselines = [("in-process SavedModel", in_process_caller(model_dir, image), args.concurrency)]
    if layout.tflite_path(model_dir).is_file():
        # One interpreter serves one call at a time: concurrency 1 only.
        tflite_levels = [c for c in args.concurrency if c == 1]
        baselines.append(("in-process TFLite", in_process_tflite_caller(model_dir, image), tflite_levels))
    for name, call, levels in baselines:
        for concurrency in levels:
            rows.append((name, concurrency, measure(call, args.requests, concurrency, args.warmup)))
            if concurrency == 1:
                paced = measure(call, args.requests, 1, args.warmup, PACED_PAUSE_S)
                rows.append((f"{name} {PACED}", 1, paced))

    print(f"model: {model_dir}  requests per row: {args.requests}  image batch: 1  cpus: {os.cpu_count()}")
    print(f"{'transport':<34} {'concurrency':>11} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8}")
    for transport, concurrency, stats in sorted(rows, key=lambda r: (r[1], r[0])):
        p50, p99, rps = stats["p50"], stats["p99"], stats["rps"]
        print(f"{transport:<34} {concurrency:>11} {p50:>8.2f} {p99:>8.2f} {rps:>8.0f}")
    print(f"(rows marked '{PACED}' idle before each request; their req/s counts the idle time)")
    grpc_p50 = next(s["p50"] for t, c, s in rows if t == "gRPC" and c == 1) if 1 in args.concurrency else None
    if grpc_p50 is not None:
        verdict = "meets" if grpc_p50 <= GRPC_P50_TARGET_MS else "MISSES"
        print(f"gRPC p50 at concurrency 1: {grpc_p50:.2f} ms ({verdict} the {GRPC_P50_TARGET_MS} ms target)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
