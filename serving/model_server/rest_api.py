"""TF Serving's REST API (api_rest): status, metadata and predict, with its URL forms and error bodies."""

import contextlib
import json
import logging
import re
import socket
import threading
import time
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

import grpc
from google.protobuf import json_format
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2

from serving.model_server.errors import ServingError, invalid_argument
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

    def __init__(self, core: ServingCore, timeout_s: float | None = None):
        self._core = core
        self._timeout_s = timeout_s
        self._pool = (
            futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="rest-run") if timeout_s else None
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
    protocol_version = "HTTP/1.1"  # keep-alive, like TF Serving's libevent server
    server_version = "TFServingLocal"
    api: RestApi
    metrics = None
    metrics_path = ""
    timeout = 60  # seconds an idle keep-alive connection is kept
    disable_nagle_algorithm = True  # headers and body go out in separate writes: no 40 ms delayed-ACK stall
    busy = False

    def setup(self):
        super().setup()
        self.server.open_handlers.add(self)

    def finish(self):
        self.server.open_handlers.discard(self)
        super().finish()

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

    def _read_body(self) -> bytes | None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self._reply(413, json.dumps({"error": f"Request body larger than {MAX_BODY_BYTES} bytes"}))
            self.close_connection = True
            return None
        return self.rfile.read(length) if length else b""

    def _dispatch(self, method: str) -> None:
        self.busy = True
        try:
            self._serve(method)
        finally:
            self.busy = False
            if getattr(self.server, "stopping", False):
                self.close_connection = True

    def _serve(self, method: str) -> None:
        path = self.path.split("?", 1)[0]
        body = self._read_body()
        if body is None:
            return
        if self.metrics is not None and path == self.metrics_path and method == "GET":
            self._reply(200, self.metrics.render(), "text/plain; version=0.0.4")
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
    """A threaded HTTP server for the REST API; `stop()` lets requests in flight finish."""

    def __init__(self, api: RestApi, host: str, port: int, metrics=None, metrics_path: str = ""):
        handler = type("Handler", (_Handler,), {"api": api, "metrics": metrics, "metrics_path": metrics_path})
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = False
        self._server.block_on_close = True
        self._server.open_handlers = set()
        self._thread = threading.Thread(target=self._server.serve_forever, name="rest", daemon=True)

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting requests and wait for the ones in flight."""
        self._server.stopping = True
        self._server.shutdown()
        for handler in list(self._server.open_handlers):
            if not handler.busy:  # idle keep-alive connection: close it so its thread ends
                with contextlib.suppress(OSError):
                    handler.connection.shutdown(socket.SHUT_RDWR)
        self._server.server_close()
