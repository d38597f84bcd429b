"""The gateway client sends what API.md specifies and turns every failure into a GatewayError."""

import json

import httpx
import pytest

from ui.client import FeedbackRequest, GatewayClient, GatewayError, PredictRequest

RECORD = {
    "id": 1,
    "created_at": "2025-05-01T12:00:00Z",
    "label": 7,
    "predicted": 1,
    "version": 2,
    "preprocessing": "standard",
    "held_out": False,
}


class FakeGateway:
    """An in-process gateway (httpx transport) that records requests and answers as configured."""

    def __init__(self):
        self.requests: list[httpx.Request] = []
        self.fault: Exception | None = None
        self.routes = {
            "/healthz": (200, {"status": "ok"}),
            "/readyz": (200, {"status": "ready"}),
            "/v1/models": (
                200,
                {
                    "model": "mnist",
                    "versions": [{"version": 1, "state": "AVAILABLE"}],
                    "labels": {"stable": 1},
                },
            ),
            "/v1/predict": (200, {"digit": 3, "probabilities": [0.1] * 10}),
            "/v1/feedback": (201, RECORD),
        }

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.fault is not None:
            raise self.fault
        status, body = self.routes[request.url.path]
        if isinstance(body, str):
            return httpx.Response(status, text=body)
        return httpx.Response(status, json=body)

    def client(self, timeout_s: float = 5.0) -> GatewayClient:
        return GatewayClient("http://gateway.test/", timeout_s, transport=httpx.MockTransport(self.handle))


def test_predict_posts_multipart_image_with_options():
    gateway = FakeGateway()
    result = gateway.client().predict(
        PredictRequest(image=b"\x89PNG-bytes", params={"preprocessing": "standard", "label": "stable"})
    )
    assert result.reply["digit"] == 3 and result.round_trip_ms >= 0
    sent = gateway.requests[0]
    assert sent.method == "POST" and sent.url.path == "/v1/predict"
    assert dict(sent.url.params) == {"preprocessing": "standard", "label": "stable"}
    body = sent.read()
    assert b'name="image"; filename="digit.png"' in body and b"\x89PNG-bytes" in body


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        (httpx.ConnectError("refused"), "unreachable"),
        (httpx.ReadTimeout("slow"), "timeout"),
        (httpx.RemoteProtocolError("dropped"), "unreachable"),
    ],
)
def test_transport_failures_become_gateway_errors(fault, kind):
    gateway = FakeGateway()
    gateway.fault = fault
    with pytest.raises(GatewayError) as caught:
        gateway.client(timeout_s=1.5).predict(PredictRequest(image=b"x"))
    assert caught.value.kind == kind


def test_error_body_code_and_message_are_kept():
    gateway = FakeGateway()
    gateway.routes["/v1/predict"] = (422, {"error": {"code": "no_digit", "message": "the image is blank"}})
    with pytest.raises(GatewayError) as caught:
        gateway.client().predict(PredictRequest(image=b"x"))
    assert (caught.value.status, caught.value.code, caught.value.message) == (
        422,
        "no_digit",
        "the image is blank",
    )


@pytest.mark.parametrize("route", [(502, "<html>bad gateway</html>"), (200, "not json"), (200, "[1, 2]")])
def test_non_json_or_unexpected_replies_become_gateway_errors(route):
    gateway = FakeGateway()
    gateway.routes["/v1/predict"] = route
    with pytest.raises(GatewayError):
        gateway.client().predict(PredictRequest(image=b"x"))


def test_status_reports_ready_gateway_with_models():
    status = FakeGateway().client().status()
    assert status.live and status.ready and status.models["labels"] == {"stable": 1}


def test_status_reports_not_ready_model():
    gateway = FakeGateway()
    gateway.routes["/readyz"] = (503, {"error": {"code": "unavailable", "message": "no AVAILABLE version"}})
    status = gateway.client().status()
    assert status.live and not status.ready and status.error == "no AVAILABLE version"


def test_status_never_raises_when_gateway_is_down():
    gateway = FakeGateway()
    gateway.fault = httpx.ConnectError("refused")
    status = gateway.client().status()
    assert not status.live and not status.ready and status.models is None and "not reachable" in status.error


def multipart_fields(request: httpx.Request) -> dict[str, str]:
    """The plain (non-file) fields of a multipart request body."""
    body = request.read().decode("latin-1")
    found = {}
    for part in body.split("--" + request.headers["content-type"].split("boundary=")[1]):
        head, _, value = part.partition("\r\n\r\n")
        if 'name="' in head and "filename=" not in head:
            found[head.split('name="')[1].split('"')[0]] = value.removesuffix("\r\n")
    return found


def test_feedback_posts_the_image_and_the_correction_as_form_fields():
    gateway = FakeGateway()
    record = gateway.client().feedback(
        FeedbackRequest(
            image=b"\x89PNG-drawn",
            label=7,
            filename="photo.jpg",
            content_type="image/jpeg",
            predicted=1,
            version=2,
            preprocessing="standard",
        )
    )
    assert record == RECORD
    sent = gateway.requests[0]
    assert sent.method == "POST" and sent.url.path == "/v1/feedback" and not sent.url.params
    assert b'name="image"; filename="photo.jpg"' in sent.read() and b"\x89PNG-drawn" in sent.read()
    assert b"Content-Type: image/jpeg" in sent.read()
    assert multipart_fields(sent) == {
        "label": "7",
        "predicted": "1",
        "version": "2",
        "preprocessing": "standard",
    }


def test_feedback_leaves_out_what_the_reply_did_not_say():
    gateway = FakeGateway()
    gateway.client().feedback(FeedbackRequest(image=b"png", label=0))
    assert multipart_fields(gateway.requests[0]) == {"label": "0"}


@pytest.mark.parametrize(
    ("route", "status", "code"),
    [
        ((503, {"error": {"code": "storage_unavailable", "message": "db down"}}), 503, "storage_unavailable"),
        ((400, {"error": {"code": "bad_option", "message": "label must be 0-9"}}), 400, "bad_option"),
        ((422, {"error": {"code": "no_digit", "message": "blank"}}), 422, "no_digit"),
    ],
)
def test_feedback_refusals_become_gateway_errors(route, status, code):
    gateway = FakeGateway()
    gateway.routes["/v1/feedback"] = route
    with pytest.raises(GatewayError) as caught:
        gateway.client().feedback(FeedbackRequest(image=b"png", label=7))
    assert (caught.value.kind, caught.value.status, caught.value.code) == ("http", status, code)


@pytest.mark.parametrize(
    ("fault", "kind"),
    [(httpx.ConnectError("refused"), "unreachable"), (httpx.ReadTimeout("slow"), "timeout")],
)
def test_feedback_transport_failures_become_gateway_errors(fault, kind):
    gateway = FakeGateway()
    gateway.fault = fault
    with pytest.raises(GatewayError) as caught:
        gateway.client().feedback(FeedbackRequest(image=b"png", label=7))
    assert caught.value.kind == kind


def test_every_call_has_a_deadline():
    gateway = FakeGateway()
    client = gateway.client(timeout_s=4.0)
    client.predict(PredictRequest(image=b"x"))
    client.feedback(FeedbackRequest(image=b"x", label=1))
    client.status()
    for request in gateway.requests:
        timeout = request.extensions["timeout"]
        assert all(0 < timeout[phase] <= 4.0 for phase in ("connect", "read", "write", "pool")), json.dumps(
            timeout
        )
