"""make bench: end-to-end latency and throughput of the gateway stack vs the seed design, in one run.

Starts the local model server, the gateway under gunicorn (gRPC transport over TCP, and a second one
over the model server's --grpc_socket_path Unix socket), a gateway over two model servers
(`gateway-2-servers`: a second model server on the same models, the gateway given both as one
round_robin target; measured at concurrency 1 and 16 against `gateway`, its one-server baseline) and the
seed baseline (bench/seed_app.py: Flask + Keras model.predict in-process) on free loopback ports, then
drives each with a bounded closed-loop load (concurrency 1 and 16) for a PNG upload and for a JSON pixel
array, and prints p50/p95/p99 latency and throughput side by side.
"""

import argparse
import http.client
import io
import json
import os
import socket
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from contract.layout import list_versions
from tests.fixtures.gateway_process import gateway_env, start_gateway
from tests.support.model_server import copy_model, start_model_server
from tests.support.processes import REPO_ROOT, ServiceProcess, free_port
from training.idx import read_idx

BOUNDARY = "benchboundary7d3f"
REPORT_JSON = REPO_ROOT / "reports" / "bench_gateway.json"
REPORT_MD = REPO_ROOT / "reports" / "bench_gateway.md"
TARGET_P50_MS = 5.0
TARGET_SPEEDUP = 10.0
TWO_SERVERS = "gateway-2-servers"


@dataclass
class CellResult:
    """One (system, payload, concurrency) measurement."""

    system: str
    payload: str
    concurrency: int
    requests: int
    errors: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    throughput_rps: float
    client_cpu_ms: float


def sample_digit() -> np.ndarray:
    """The first MNIST test digit (28x28 uint8, white on black), or a drawn 7 without the data."""
    path = REPO_ROOT / "data" / "mnist" / "t10k-images-idx3-ubyte"
    if path.exists():
        return read_idx(path)[0]
    from tests.fixtures.digit_images import draw_digit

    return 255 - draw_digit(7, size=(28, 28), box=0.7)


def payloads(digit: np.ndarray) -> dict[str, tuple[bytes, str]]:
    """Request bodies: a 280x280 canvas-like PNG (dark ink on white) as multipart, and JSON pixels."""
    canvas = 255 - cv2.resize(digit, (280, 280), interpolation=cv2.INTER_LINEAR)
    buffer = io.BytesIO()
    Image.fromarray(canvas).save(buffer, "PNG")
    multipart = (
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="image"; filename="digit.png"\r\n'
            f"Content-Type: image/png\r\n\r\n"
        ).encode()
        + buffer.getvalue()
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )
    pixels = json.dumps({"pixels": digit.astype(int).tolist()}).encode()
    return {
        "png": (multipart, f"multipart/form-data; boundary={BOUNDARY}"),
        "pixels": (pixels, "application/json"),
    }


# Each payload's request path: `png-explain` is the PNG with the explanation (one more upstream call).
PATHS = {"png": "/v1/predict", "pixels": "/v1/predict", "png-explain": "/v1/predict?explain=true"}


class KeepAliveClient:
    """A minimal HTTP/1.1 keep-alive client that replays one pre-built request.

    Python's http.client spends ~0.3 ms of CPU per request parsing headers, time that would be counted
    against the server; this one, like wrk or hey, only reads the status line, Content-Length and body.
    """

    def __init__(self, port: int, request_bytes: bytes, timeout_s: float = 30.0):
        self._address = ("127.0.0.1", port)
        self._request = request_bytes
        self._timeout_s = timeout_s
        self._sock: socket.socket | None = None
        self._buffer = b""

    def post(self) -> int:
        """Send the request and read the whole response; returns the HTTP status."""
        if self._sock is None:
            self._sock = socket.create_connection(self._address, timeout=self._timeout_s)
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._buffer = b""
        self._sock.sendall(self._request)
        while b"\r\n\r\n" not in self._buffer:
            self._receive()
        head, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        fields = (line.split(b":", 1) for line in lines[1:])
        headers = {name.strip().lower(): value.strip().lower() for name, value in fields}
        length = int(headers.get(b"content-length", b"-1"))
        if length < 0:
            raise http.client.HTTPException("response without Content-Length")
        while len(self._buffer) < length:
            self._receive()
        self._buffer = self._buffer[length:]
        if headers.get(b"connection") == b"close" or lines[0].startswith(b"HTTP/1.0"):
            self.close()
        return status

    def _receive(self) -> None:
        chunk = self._sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        self._buffer += chunk

    def close(self) -> None:
        """Drop the connection; the next post() opens a new one."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def request_bytes(body: bytes, content_type: str, path: str = "/v1/predict") -> bytes:
    """The whole POST request to `path`, headers and body."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def run_cell(
    port: int,
    body: bytes,
    content_type: str,
    concurrency: int,
    max_requests: int,
    max_seconds: float,
    warmup: int = 10,
    path: str = "/v1/predict",
) -> tuple[list[float], int, float, float]:
    """Closed-loop load: `concurrency` threads, each with its own keep-alive connection, bounded.

    Returns the latencies, the error count, the wall time and the client's own CPU ms per request.
    """
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    issued = [0]
    deadline = [0.0]
    request = request_bytes(body, content_type, path)

    def worker():
        client = KeepAliveClient(port, request)
        try:
            while True:
                with lock:
                    if issued[0] >= max_requests or time.perf_counter() > deadline[0]:
                        return
                    issued[0] += 1
                start = time.perf_counter()
                try:
                    status = client.post()
                except (OSError, ValueError, IndexError, http.client.HTTPException):
                    client.close()
                    status = 0
                elapsed = time.perf_counter() - start
                with lock:
                    latencies.append(elapsed)
                    if status != 200:
                        errors[0] += 1
        finally:
            client.close()

    warm = KeepAliveClient(port, request)
    for _ in range(warmup):
        warm.post()
    warm.close()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    cpu_start = time.process_time()
    start = time.perf_counter()
    deadline[0] = start + max_seconds
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    client_cpu_ms = (time.process_time() - cpu_start) * 1000 / max(1, len(latencies))
    return latencies, errors[0], wall, client_cpu_ms


def summarise(
    system: str,
    payload: str,
    concurrency: int,
    latencies: list[float],
    errors: int,
    wall_s: float,
    client_cpu_ms: float,
) -> CellResult:
    """Percentiles in ms and requests per second."""
    values = np.array(latencies) * 1000
    p50, p95, p99 = (float(np.percentile(values, q)) for q in (50, 95, 99))
    return CellResult(
        system,
        payload,
        concurrency,
        len(latencies),
        errors,
        round(p50, 2),
        round(p95, 2),
        round(p99, 2),
        round(len(latencies) / wall_s, 1),
        round(client_cpu_ms, 3),
    )


def markdown(results: list[CellResult]) -> str:
    """The comparison table plus the target checks."""
    lines = [
        "| system | payload | concurrency | requests | errors | p50 ms | p95 ms | p99 ms | req/s "
        "| client CPU ms/req |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r.system} | {r.payload} | {r.concurrency} | {r.requests} | {r.errors} | {r.p50_ms} | "
        f"{r.p95_ms} | {r.p99_ms} | {r.throughput_rps} | {r.client_cpu_ms} |"
        for r in results
    ]
    by_key = {(r.system, r.payload, r.concurrency): r for r in results}
    lines.append("")
    png1 = by_key.get(("gateway", "png", 1))
    if png1:
        verdict = "met" if png1.p50_ms <= TARGET_P50_MS else "NOT met"
        lines.append(
            f"- gateway p50, one PNG at concurrency 1: {png1.p50_ms} ms (target <= {TARGET_P50_MS} ms: "
            f"{verdict})"
        )
    for payload in ("png", "pixels"):
        for concurrency in (1, 16):
            ours, seed = (
                by_key.get(("gateway", payload, concurrency)),
                by_key.get(("seed", payload, concurrency)),
            )
            if ours and seed and seed.throughput_rps > 0:
                ratio = ours.throughput_rps / seed.throughput_rps
                verdict = "met" if ratio >= TARGET_SPEEDUP else "NOT met"
                lines.append(
                    f"- throughput {payload} at concurrency {concurrency}: gateway {ours.throughput_rps} "
                    f"req/s vs seed {seed.throughput_rps} req/s = {ratio:.1f}x (target >= "
                    f"{TARGET_SPEEDUP:.0f}x: {verdict})"
                )
    for payload in ("png", "pixels", "png-explain"):
        for concurrency in (1, 16):
            one, two = (
                by_key.get(("gateway", payload, concurrency)),
                by_key.get((TWO_SERVERS, payload, concurrency)),
            )
            if one and two and one.throughput_rps > 0:
                lines.append(
                    f"- two model servers against one, {payload} at concurrency {concurrency}: "
                    f"{two.throughput_rps} vs {one.throughput_rps} req/s = "
                    f"{two.throughput_rps / one.throughput_rps:.2f}x, p50 {two.p50_ms} vs {one.p50_ms} ms"
                )
    return "\n".join(lines)


def skipped(system: str, payload: str, concurrency: int, two_servers_concurrency: list[int]) -> bool:
    """Cells not measured: the seed has no explanations; two servers only at their concurrency levels."""
    if system == "seed" and payload == "png-explain":
        return True
    return system == TWO_SERVERS and concurrency not in two_servers_concurrency


def main() -> int:
    """Start the stack and the seed, measure every cell, print and save the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model",
        type=Path,
        default=max(list_versions(REPO_ROOT / "models" / "mnist").items())[1],
        help="SavedModel version directory to serve (copied to a temp base path; default: the newest)",
    )
    parser.add_argument("--max-requests", type=int, default=3000, help="cap on requests per cell")
    parser.add_argument("--seconds", type=float, default=10.0, help="cap on seconds per cell")
    parser.add_argument(
        "--concurrency", type=int, nargs="+", default=[1, 16], help="client concurrency levels"
    )
    parser.add_argument("--skip-seed", action="store_true", help="measure the gateway only")
    parser.add_argument(
        "--also-gateway",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="also measure the gateway of another source tree (e.g. `git archive` of an older commit)",
    )
    parser.add_argument(
        "--unix-socket",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also serve gRPC on a Unix socket (--grpc_socket_path) and measure a gateway that uses it",
    )
    parser.add_argument(
        "--two-servers-concurrency",
        type=int,
        nargs="*",
        default=[1, 16],
        help=f"concurrency levels at which to measure {TWO_SERVERS} (none: do not start a second server)",
    )
    parser.add_argument(
        "--payloads",
        nargs="+",
        default=["png", "pixels", "png-explain"],
        choices=list(PATHS),
        help="bodies to send (png-explain: the PNG with explain=true)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="split each cell into this many rounds, systems alternating, so drift hits all alike",
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-gateway-"))
    copy_model(args.model, work / "models" / "mnist", 1)
    print(f"logs in {work}", file=sys.stderr)
    socket_path = work / "grpc.sock"
    server = start_model_server(
        work,
        model_base_path=work / "models" / "mnist",
        extra_flags=[f"--grpc_socket_path={socket_path}"] if args.unix_socket else [],
    )
    started: list = [server]

    def gateway_over(target: str, name: str):
        """A gateway on the same routing file whose gRPC target is `target`."""
        env = gateway_env(
            server.grpc_port,
            server.rest_port,
            "grpc",
            ROUTING_FILE=str(work / "routing.json"),
            TF_SERVING_GRPC_TARGET=target,
        )
        return start_gateway(work, env, name=name)

    try:
        gateway = start_gateway(
            work,
            gateway_env(server.grpc_port, server.rest_port, "grpc", ROUTING_FILE=str(work / "routing.json")),
        )
        started.append(gateway)
        systems = {"gateway": int(gateway.url.rsplit(":", 1)[1])}
        if args.unix_socket:
            over_socket = gateway_over(f"unix:{socket_path}", "gateway-unix")
            started.append(over_socket)
            systems["gateway-unix"] = int(over_socket.url.rsplit(":", 1)[1])
        if args.two_servers_concurrency:
            second = start_model_server(
                work, model_base_path=work / "models" / "mnist", name="model_server_2"
            )
            started.append(second)
            both = f"127.0.0.1:{server.grpc_port},127.0.0.1:{second.grpc_port}"
            two = gateway_over(both, TWO_SERVERS)
            started.append(two)
            systems[TWO_SERVERS] = int(two.url.rsplit(":", 1)[1])
        for spec in args.also_gateway:
            name, _, directory = spec.partition("=")
            other = start_gateway(
                work,
                gateway_env(
                    server.grpc_port, server.rest_port, "grpc", ROUTING_FILE=str(work / "routing.json")
                ),
                name=name,
                source_dir=Path(directory),
            )
            started.append(other)
            systems[name] = int(other.url.rsplit(":", 1)[1])
        if not args.skip_seed:
            seed_port = free_port()
            seed = ServiceProcess(
                "seed",
                ["-m", "bench.seed_app", "--model", str(args.model), "--port", str(seed_port)],
                work,
                env={"CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "2"},
            )
            started.append(seed)
            seed.wait_http(f"http://127.0.0.1:{seed_port}/healthz", timeout_s=120)
            systems["seed"] = seed_port
        bodies = payloads(sample_digit())
        results = []
        rounds = max(1, args.rounds)
        for payload in args.payloads:
            body, content_type = bodies[payload.removesuffix("-explain")]
            for concurrency in args.concurrency:
                runs: dict[str, list] = {system: [[], 0, 0.0, 0.0] for system in systems}
                for _ in range(rounds):
                    for system, port in systems.items():
                        if skipped(system, payload, concurrency, args.two_servers_concurrency):
                            continue
                        latencies, errors, wall, client_cpu = run_cell(
                            port,
                            body,
                            content_type,
                            concurrency,
                            args.max_requests // rounds,
                            args.seconds / rounds,
                            path=PATHS[payload],
                        )
                        run = runs[system]
                        run[0] += latencies
                        run[1] += errors
                        run[2] += wall
                        run[3] += client_cpu / rounds
                for system, (latencies, errors, wall, client_cpu) in runs.items():
                    if skipped(system, payload, concurrency, args.two_servers_concurrency):
                        continue
                    result = summarise(system, payload, concurrency, latencies, errors, wall, client_cpu)
                    print(
                        f"{system:8s} {payload:7s} c={concurrency:<3d} n={result.requests:<5d} "
                        f"p50={result.p50_ms:8.2f} ms p99={result.p99_ms:8.2f} ms "
                        f"{result.throughput_rps:8.1f} req/s errors={errors} "
                        f"client CPU {client_cpu:.3f} ms/req",
                        file=sys.stderr,
                    )
                    results.append(result)
    finally:
        for service in reversed(started):
            service.stop()
    table = markdown(results)
    print(table)
    REPORT_JSON.parent.mkdir(exist_ok=True)
    REPORT_JSON.write_text(
        json.dumps({"cpu_count": os.cpu_count(), "results": [asdict(r) for r in results]}, indent=2)
    )
    REPORT_MD.write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
