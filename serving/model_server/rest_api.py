"""TF Serving's REST API (api_rest): status, metadata and predict, with its URL forms and error bodies."""

import contextlib
import json
import logging
import re
import select
import socket
import threading
import time
from concurrent import futures
from http.server import BaseHTTPRequestHandler
from urllib.parse import unquote

import grpc
from google.protobuf import json_format
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2

from serving.model_server.errors import ServingError, invalid_argument
from serving.model_server.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from serving.model_server.service import SIGNATURE_DEF_FIELD, ServingCore

log = logging.getLogger(__name__)

# tensorflow_serving/model_servers/http_rest_api_util.cc
PREDICTION_API = re.compile(
    r"/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?:(classify|regress|predict)", re.I
)
MODEL_STATUS_API = re.compile(
    r"/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?(?:/(metadata))?", re.I
)
REST_PATH = re.compile(r"/v1/.*", re.I)
MAX_BODY_BYTES = 64 * 1024 * 1024
CONTENT_LENGTH = re.compile(r"[0-9]{1,20}")  # one non-negative decimal number, as RFC 9110 allows
READ_TIMEOUT_S = 60  # a request's bytes must keep coming
IDLE_TIMEOUT_S = 60  # an idle keep-alive connection is closed after this
# Reported to one waiting thread, then silent until re-armed. epoll is Linux's; elsewhere RestServer refuses.
ARMED = select.EPOLLIN | select.EPOLLONESHOT if hasattr(select, "epoll") else 0


def _to_json(message) -> str:
    """MessageToJsonString with always_print_primitive_fields and proto field names, as TF Serving prints."""
    return json_format.MessageToJson(
        message, always_print_fields_with_no_presence=True, preserving_proto_field_name=True, indent=1
    )


def status_json(response: get_model_status_pb2.GetModelStatusResponse) -> str:
    """GetModelStatusResponse as TF Serving's REST API prints it (ToJsonString)."""
    return _to_json(response)


def metadata_json(response: get_model_metadata_pb2.GetModelMetadataResponse) -> str:
    """{"model_spec": ..., "metadata": {"signature_def": <SignatureDefMap JSON>}} (http_rest_api_util.cc)."""
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    response.metadata[SIGNATURE_DEF_FIELD].Unpack(signature_map)
    return (
        '{\n"model_spec":'
        + _to_json(response.model_spec)
        + ',\n"metadata": {"signature_def": '
        + _to_json(signature_map)
        + "}\n}\n"
    )


class RestApi:
    """Routes one REST request to the serving core; returns (HTTP status, JSON body)."""

    def __init__(self, core: ServingCore, timeout_s: float | None = None, num_threads: int = 1):
        self._core = core
        self._timeout_s = timeout_s
        # With a timeout a request runs on this pool while its REST worker waits, so both are the same size.
        self._pool = (
            futures.ThreadPoolExecutor(max_workers=num_threads, thread_name_prefix="rest-run")
            if timeout_s
            else None
        )

    def handle(self, method: str, path: str, body: bytes) -> tuple[int, str]:
        """Dispatch like HttpRestApiHandler::ProcessRequest; errors become {"error": "..."}."""
        started = time.perf_counter()
        model_name = ""
        is_predict = False
        try:
            if method == "POST" and (match := PREDICTION_API.fullmatch(path)):
                model_name, version, label = _model_info(match)
                verb = match.group(4).lower()
                if verb != "predict":
                    raise ServingError(
                        grpc.StatusCode.UNIMPLEMENTED,
                        f"{verb} is not supported by the local model server; only predict is",
                    )
                is_predict = True
                result = self._call(self._core.predict_json, model_name, version, label, body)
            elif method == "GET" and (match := MODEL_STATUS_API.fullmatch(path)):
                model_name, version, label = _model_info(match)
                if not model_name:
                    raise invalid_argument("Missing model name in request.")
                result = (
                    self._metadata(model_name, version, label)
                    if match.group(4)
                    else self._status(model_name, version, label)
                )
            else:
                raise invalid_argument(f"Malformed request: {method} {path}")
        except ServingError as exc:
            if is_predict:
                self._core.record(model_name, "predict", "REST", started, exc)
            return exc.http_status, json.dumps({"error": exc.message})
        if is_predict:
            self._core.record(model_name, "predict", "REST", started, None)
        return 200, result

    def _call(self, fn, *args):
        if self._pool is None:
            return fn(*args)
        future = self._pool.submit(fn, *args)
        try:
            return future.result(timeout=self._timeout_s)
        except futures.TimeoutError:
            raise ServingError(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded") from None

    def _status(self, name: str, version: int | None, label: str | None) -> str:
        request = get_model_status_pb2.GetModelStatusRequest()
        _fill_spec(request.model_spec, name, version, label)
        return status_json(self._core.status(request))

    def _metadata(self, name: str, version: int | None, label: str | None) -> str:
        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=[SIGNATURE_DEF_FIELD])
        _fill_spec(request.model_spec, name, version, label)
        return metadata_json(self._core.metadata(request))


def _model_info(match: re.Match) -> tuple[str, int | None, str | None]:
    name = unquote(match.group(1) or "")
    version_text, label = match.group(2), match.group(3)
    version = None
    if version_text:
        version = int(version_text)
        if version > 2**63 - 1:
            raise invalid_argument(f"Failed to convert version: {version_text} to numeric.")
    return name, version, unquote(label) if label else None


def _fill_spec(spec, name: str, version: int | None, label: str | None) -> None:
    spec.name = name
    if version is not None:
        spec.version.value = version
    if label is not None:
        spec.version_label = label


class _Handler(BaseHTTPRequestHandler):
    """One per connection; RestServer runs `serve_request()` on a worker for each request it carries."""

    protocol_version = "HTTP/1.1"  # keep-alive, like TF Serving's libevent server
    server_version = "TFServingLocal"
    api: RestApi
    metrics = None
    metrics_path = ""
    timeout = READ_TIMEOUT_S  # a client that stops sending mid-request loses its connection
    disable_nagle_algorithm = True  # headers and body go out in separate writes: no 40 ms delayed-ACK stall
    busy = False  # a thread is answering on this connection
    idle_since = 0.0

    def __init__(self, request, client_address, server):  # unlike the base class: set up, do not handle()
        self.request, self.client_address, self.server = request, client_address, server
        self.close_connection = False
        self.setup()

    def serve_request(self) -> None:
        """Answer one request, then any the client already pipelined behind it."""
        self.handle_one_request()
        while not self.close_connection and self._has_buffered_request():
            self.handle_one_request()

    def _has_buffered_request(self) -> bool:
        # A non-blocking peek returns what is buffered or already arrived, never waits for more.
        self.connection.setblocking(False)
        try:
            return bool(self.rfile.peek(1))
        except OSError:
            return False
        finally:
            self.connection.settimeout(self.timeout)

    def log_message(self, format, *args):  # noqa: A002 - signature from BaseHTTPRequestHandler
        log.debug("%s %s", self.address_string(), format % args)

    def _reply(self, status: int, body: str, content_type: str = "application/json") -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self._headers_buffer.append(b"\r\n")
        self.wfile.write(b"".join(self._headers_buffer) + data)  # one write for headers and body
        self._headers_buffer = []

    def _refuse(self, status: int, message: str) -> None:
        """Answer an error and close: the rest of this connection's bytes cannot be trusted."""
        self.close_connection = True
        self._reply(status, json.dumps({"error": message}))

    def _read_body(self) -> bytes | None:
        raw = self.headers.get("Content-Length")
        if raw is None:
            return b""
        if not CONTENT_LENGTH.fullmatch(raw):  # negative, non-numeric, several values
            self._refuse(400, f"Invalid Content-Length header: {raw!r}")
            return None
        length = int(raw)
        if length > MAX_BODY_BYTES:
            self._refuse(413, f"Request body larger than {MAX_BODY_BYTES} bytes")
            return None
        body = self.rfile.read(length) if length else b""
        if len(body) < length:  # the client closed before sending what it announced
            self.close_connection = True
            return None
        return body

    def _dispatch(self, method: str) -> None:
        try:
            self._serve(method)
        finally:
            if self.server.stopping:
                self.close_connection = True

    def _serve(self, method: str) -> None:
        path = self.path.split("?", 1)[0]
        body = self._read_body()
        if body is None:
            return
        if self.metrics is not None and path == self.metrics_path and method == "GET":
            self._reply(200, self.metrics.render(), METRICS_CONTENT_TYPE)
            return
        if not REST_PATH.fullmatch(path):
            self._reply(404, json.dumps({"error": f"Not found: {method} {path}"}))
            return
        try:
            status, payload = self.api.handle(method, path, body)
        except Exception:  # never a stack trace to the client; the log keeps it
            log.exception("Unhandled error for %s %s", method, path)
            status, payload = 500, json.dumps({"error": "Internal error in the local model server"})
        self._reply(status, payload)

    def do_GET(self):  # noqa: N802 - BaseHTTPRequestHandler API
        self._dispatch("GET")

    def do_POST(self):  # noqa: N802 - BaseHTTPRequestHandler API
        self._dispatch("POST")


class RestServer:
    """The REST API on `num_threads` threads, like tensorflow_model_server's --rest_api_num_threads.

    Every thread waits on one epoll set holding the listening socket and each idle keep-alive connection,
    armed one-shot: the thread that wakes for a connection answers its request itself and re-arms it. So at
    most `num_threads` requests run at once whatever the number of clients, the others wait in the kernel,
    a silent connection holds no thread, and no request is handed between threads. Linux (epoll) only.
    `stop()` stops accepting, lets requests in flight finish and closes every connection.
    """

    def __init__(
        self, api: RestApi, host: str, port: int, num_threads: int, metrics=None, metrics_path: str = ""
    ):
        self._handler = type(
            "Handler", (_Handler,), {"api": api, "metrics": metrics, "metrics_path": metrics_path}
        )
        if not hasattr(select, "epoll"):
            raise OSError("the local model server's REST API needs Linux (epoll)")
        self._listener = socket.create_server((host, port), backlog=128)
        self._listener.setblocking(False)
        self._wake_read, self._wake_write = socket.socketpair()
        self._epoll = select.epoll()
        self._epoll.register(self._listener.fileno(), ARMED)
        self._epoll.register(self._wake_read.fileno(), select.EPOLLIN)  # level-triggered: wakes every thread
        self._lock = threading.Lock()
        self._connections: dict[int, _Handler] = {}  # by file descriptor
        self._next_sweep = time.monotonic() + 1.0
        self.stopping = False
        self._threads = [
            threading.Thread(target=self._work, name=f"rest-{i}", daemon=True) for i in range(num_threads)
        ]

    @property
    def port(self) -> int:
        """The bound port."""
        return self._listener.getsockname()[1]

    def start(self) -> None:
        """Serve on the worker threads."""
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stop accepting requests, wait for the ones in flight, close every connection."""
        self.stopping = True
        self._wake_write.send(b"s")
        for thread in self._threads:
            thread.join()
        with self._lock:
            handlers, self._connections = list(self._connections.values()), {}
        for handler in handlers:
            _close(handler)
        self._epoll.close()
        for sock in (self._listener, self._wake_read, self._wake_write):
            sock.close()

    def _work(self) -> None:
        listener, wake = self._listener.fileno(), self._wake_read.fileno()
        while not self.stopping:
            for fd, _ in self._epoll.poll(1.0, 1):  # one event per thread, so work spreads over threads
                if fd == listener:
                    self._accept()
                elif fd != wake:
                    handler = self._claim(fd)
                    if handler is not None:
                        self._serve(handler)
            self._sweep()

    def _accept(self) -> None:
        try:
            while not self.stopping:
                try:
                    sock, address = self._listener.accept()
                except (BlockingIOError, InterruptedError):
                    return
                except OSError as exc:  # out of file descriptors: keep serving the connections we have
                    log.warning("accept failed: %s", exc)
                    return
                sock.setblocking(True)
                try:
                    handler = self._handler(sock, address, self)
                except OSError:
                    sock.close()
                    continue
                # Armed until its first bytes arrive: a silent client holds no thread.
                with self._lock:
                    handler.idle_since = time.monotonic()
                    self._connections[sock.fileno()] = handler
                    self._epoll.register(sock.fileno(), ARMED)
        finally:
            with contextlib.suppress(OSError):
                self._epoll.modify(self._listener.fileno(), ARMED)

    def _claim(self, fd: int) -> _Handler | None:
        with self._lock:
            handler = self._connections.get(fd)
            if handler is None or handler.busy:  # closed meanwhile, or a stale event
                return None
            handler.busy = True
            return handler

    def _serve(self, handler: _Handler) -> None:
        try:
            handler.serve_request()
        except OSError:  # the client went away
            handler.close_connection = True
        except Exception:  # one connection's error must not end this thread
            log.exception("Unhandled error on a REST connection")
            handler.close_connection = True
        fd = handler.connection.fileno()
        with self._lock:
            keep = not handler.close_connection and not self.stopping
            if keep:
                handler.busy, handler.idle_since = False, time.monotonic()
                self._epoll.modify(fd, ARMED)
            else:
                self._drop(fd)
        if not keep:
            _close(handler)

    def _drop(self, fd: int) -> None:
        """Forget a connection (under the lock)."""
        self._connections.pop(fd, None)
        with contextlib.suppress(OSError):
            self._epoll.unregister(fd)

    def _sweep(self) -> None:
        """Close keep-alive connections idle for IDLE_TIMEOUT_S (one thread a second does it)."""
        now = time.monotonic()
        with self._lock:
            if now < self._next_sweep:
                return
            self._next_sweep = now + 1.0
            idle = [
                (fd, h)
                for fd, h in self._connections.items()
                if not h.busy and now - h.idle_since > IDLE_TIMEOUT_S
            ]
            for fd, _ in idle:
                self._drop(fd)
        for _, handler in idle:
            _close(handler)


def _close(handler: _Handler) -> None:
    with contextlib.suppress(Exception):
        handler.finish()
    with contextlib.suppress(OSError):
        handler.connection.shutdown(socket.SHUT_RDWR)
    handler.connection.close()
