"""HTTP client for the gateway: every call has a deadline and failures become GatewayError."""

import time
from dataclasses import dataclass, field

import httpx

# Connecting to a local gateway is instant when it is up; a short connect deadline reports "down" fast.
CONNECT_TIMEOUT_S = 2.0
STATUS_TIMEOUT_S = 3.0


class GatewayError(Exception):
    """A gateway call that gave no usable answer; `kind` says why in a way the UI can explain."""

    def __init__(self, kind: str, message: str, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.kind = kind  # "unreachable" | "timeout" | "http" | "bad_reply"
        self.message = message
        self.status = status
        self.code = code


@dataclass(frozen=True)
class PredictRequest:
    """What the UI sends to POST /v1/predict: one image file and the query options."""

    image: bytes
    filename: str = "digit.png"
    content_type: str = "image/png"
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class FeedbackRequest:
    """What the UI sends to POST /v1/feedback: the image of one prediction and the digit it really is.

    `predicted`, `version` and `preprocessing` are what that prediction's reply said (None: it did not).
    """

    image: bytes
    label: int
    filename: str = "digit.png"
    content_type: str = "image/png"
    predicted: int | None = None
    version: int | None = None
    preprocessing: str | None = None


@dataclass(frozen=True)
class PredictResult:
    """The gateway's JSON reply and the round trip as the UI measured it."""

    reply: dict
    round_trip_ms: float


@dataclass(frozen=True)
class GatewayStatus:
    """Liveness, readiness and the model listing, each None when the gateway could not tell."""

    live: bool
    ready: bool
    models: dict | None
    error: str | None = None


class GatewayClient:
    """Talks to one gateway base URL with an httpx client (thread-safe, so Gradio workers can share it)."""

    def __init__(self, base_url: str, timeout_s: float, transport: httpx.BaseTransport | None = None):
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout_s, connect=min(CONNECT_TIMEOUT_S, timeout_s)),
            transport=transport,
        )

    def predict(self, request: PredictRequest) -> PredictResult:
        """POST the image as multipart `image`; return the reply or raise GatewayError."""
        files = {"image": (request.filename, request.image, request.content_type)}
        started = time.perf_counter()
        response = self._send("POST", "/v1/predict", params=request.params, files=files)
        reply = _json_body(response)
        return PredictResult(reply=reply, round_trip_ms=(time.perf_counter() - started) * 1000.0)

    def feedback(self, request: FeedbackRequest) -> dict:
        """POST the image as multipart `image` with the correction as form fields; the stored record.

        The gateway answers 201 with the record; any other answer, or none, raises GatewayError.
        """
        files = {"image": (request.filename, request.image, request.content_type)}
        fields = {
            "label": request.label,
            "predicted": request.predicted,
            "version": request.version,
            "preprocessing": request.preprocessing,
        }
        data = {name: str(value) for name, value in fields.items() if value is not None}
        return _json_body(self._send("POST", "/v1/feedback", data=data, files=files))

    def models(self) -> dict:
        """GET /v1/models: versions, labels and routing."""
        return _json_body(self._send("GET", "/v1/models", timeout=STATUS_TIMEOUT_S))

    def status(self) -> GatewayStatus:
        """Ask /healthz, /readyz and /v1/models; never raises."""
        try:
            self._send("GET", "/healthz", timeout=STATUS_TIMEOUT_S)
        except GatewayError as exc:
            return GatewayStatus(live=False, ready=False, models=None, error=exc.message)
        ready, error = True, None
        try:
            self._send("GET", "/readyz", timeout=STATUS_TIMEOUT_S)
        except GatewayError as exc:
            ready, error = False, exc.message
        try:
            models = self.models()
        except GatewayError as exc:
            models, error = None, error or exc.message
        return GatewayStatus(live=True, ready=ready, models=models, error=error)

    def close(self) -> None:
        """Release pooled connections."""
        self._http.close()

    def _send(self, method: str, path: str, timeout: float | None = None, **kwargs) -> httpx.Response:
        """One request; transport failures and non-2xx replies become GatewayError."""
        if timeout is not None:
            kwargs["timeout"] = httpx.Timeout(timeout, connect=min(CONNECT_TIMEOUT_S, timeout))
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise GatewayError("timeout", f"the gateway did not answer within {self.timeout_s:g} s") from exc
        except httpx.TransportError as exc:
            raise GatewayError("unreachable", f"the gateway at {self.base_url} is not reachable") from exc
        if response.is_success:
            return response
        code, message = _error_fields(response)
        raise GatewayError("http", message, status=response.status_code, code=code)


def _json_body(response: httpx.Response) -> dict:
    """The reply as a dict, or GatewayError when it is not a JSON object."""
    try:
        body = response.json()
    except ValueError as exc:
        raise GatewayError("bad_reply", "the gateway sent a reply that is not JSON") from exc
    if not isinstance(body, dict):
        raise GatewayError("bad_reply", "the gateway sent an unexpected reply")
    return body


def _error_fields(response: httpx.Response) -> tuple[str | None, str]:
    """(code, message) from the gateway's {"error": {"code", "message"}} body, with a fallback."""
    try:
        error = response.json().get("error", {})
        return error.get("code"), str(error.get("message") or f"HTTP {response.status_code}")
    except (ValueError, AttributeError):
        return None, f"the gateway answered HTTP {response.status_code}"
