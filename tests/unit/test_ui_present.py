"""Gateway replies and failures become the page's digit, top-3, 28x28 image, details and messages."""

import base64
import io

import pytest
from PIL import Image

from ui.client import GatewayError, GatewayStatus, PredictResult
from ui.present import (
    EMPTY_CANVAS_MESSAGE,
    NO_DIGIT_MESSAGE,
    error_message,
    model_choices,
    status_markdown,
    top_probabilities,
    view_from_result,
)

MODELS = {
    "model": "mnist",
    "versions": [
        {"version": 1, "state": "AVAILABLE", "labels": ["stable"]},
        {"version": 2, "state": "AVAILABLE", "labels": ["canary"]},
    ],
    "labels": {"stable": 1, "canary": 2},
    "routing": {"default": "stable", "canary_percent": 10},
}


def png_b64(size=(28, 28)) -> str:
    buffer = io.BytesIO()
    Image.new("L", size, 0).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def reply(**overrides) -> dict:
    probabilities = [0.001] * 10
    probabilities[7], probabilities[1], probabilities[9] = 0.95, 0.03, 0.01
    body = {
        "digit": 7,
        "confidence": 0.95,
        "probabilities": probabilities,
        "model": {"name": "mnist", "version": 2, "label": "canary"},
        "preprocessing": "enhanced",
        "timings_ms": {"decode": 0.4, "preprocess": 2.0, "upstream": 3.5, "total": 6.1},
        "processed_image": png_b64(),
    }
    return {**body, **overrides}


def test_successful_reply_shows_digit_top_three_image_version_and_latency():
    view = view_from_result(PredictResult(reply(), round_trip_ms=12.3))
    assert 'data-digit="7"' in view.digit_html and "95.0%" in view.digit_html
    assert list(view.top_probabilities) == ["7", "1", "9"]
    assert view.top_probabilities["7"] == pytest.approx(0.95)
    assert view.processed_image.size == (28, 28)
    assert "version **2**" in view.details and "canary" in view.details
    assert "12 ms" in view.details and "6.1 ms" in view.details and "3.5 ms" in view.details
    assert view.message == ""


def test_data_url_processed_image_is_decoded_and_garbage_is_ignored():
    with_prefix = view_from_result(
        PredictResult(reply(processed_image="data:image/png;base64," + png_b64()), 1)
    )
    assert with_prefix.processed_image.size == (28, 28)
    garbage = view_from_result(PredictResult(reply(processed_image="not base64!"), 1))
    assert garbage.processed_image is None and 'data-digit="7"' in garbage.digit_html


def test_reply_without_prediction_is_a_message_not_a_crash():
    view = view_from_result(PredictResult({"unexpected": True}, 1))
    assert view.top_probabilities is None and "without a prediction" in view.message


def test_top_probabilities_are_sorted_and_limited_to_three():
    assert top_probabilities([0.1, 0.5, 0.0, 0.4]) == {"1": 0.5, "3": 0.4, "0": 0.1}


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (GatewayError("unreachable", "the gateway at http://x is not reachable"), "down"),
        (GatewayError("timeout", "the gateway did not answer within 5 s"), "slow"),
        (GatewayError("http", "no digit", status=422, code="no_digit"), NO_DIGIT_MESSAGE),
        (GatewayError("http", "model not available", status=503, code="unavailable"), "not ready"),
        (GatewayError("http", "upstream timeout", status=504, code="upstream_timeout"), "too slow"),
        (GatewayError("http", "unknown label", status=404, code="unknown_label"), "refused"),
        (GatewayError("bad_reply", "not JSON"), "problem"),
    ],
)
def test_failures_become_friendly_messages(error, expected):
    message = error_message(error)
    assert expected in message and "Traceback" not in message


def test_empty_canvas_message_says_what_to_do():
    assert "empty" in EMPTY_CANVAS_MESSAGE and "draw" in EMPTY_CANVAS_MESSAGE


def test_model_choices_list_default_labels_and_versions():
    values = [value for _, value in model_choices(MODELS)]
    assert values == ["default", "label:canary", "label:stable", "version:1", "version:2"]
    assert [value for _, value in model_choices(None)] == ["default"]


def test_status_line_reports_gateway_and_model_health():
    up = status_markdown(GatewayStatus(live=True, ready=True, models=MODELS), "http://gw")
    assert "Gateway up" in up and "model ready" in up and "v1 AVAILABLE" in up and "stable→v1" in up
    not_ready = status_markdown(
        GatewayStatus(live=True, ready=False, models=None, error="HTTP 503"), "http://gw"
    )
    assert "not ready" in not_ready and "HTTP 503" in not_ready
    down = status_markdown(GatewayStatus(live=False, ready=False, models=None, error="x"), "http://gw")
    assert "Gateway down" in down and "http://gw" in down
