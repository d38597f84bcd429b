"""Gateway replies and failures become the page's digit, top-3, 28x28 image, details and messages."""

import base64
import io

import pytest
from PIL import Image

from ui.client import GatewayError, GatewayStatus, PredictResult
from ui.present import (
    EMPTY_CANVAS_MESSAGE,
    EXPLAIN_CAPTION,
    NO_DIGIT_MESSAGE,
    NOT_A_DIGIT_HEADLINE,
    NOT_A_DIGIT_HINT,
    error_message,
    model_choices,
    status_markdown,
    top_probabilities,
    view_from_result,
    without_explanation,
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


def png_b64(size=(28, 28), mode="L") -> str:
    buffer = io.BytesIO()
    Image.new(mode, size, 0).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


EXPLANATION = {
    "method": "integrated_gradients",
    "baseline": "black",
    "steps": 32,
    "digit": 7,
    "heatmap_png": png_b64((224, 224), "RGB"),
}


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


def test_digit_judged_a_digit_shows_the_digit_and_its_confidence():
    view = view_from_result(PredictResult(reply(is_digit=True, digit_score=0.93), 5))
    assert 'data-digit="7"' in view.digit_html and "95.0% sure" in view.digit_html
    assert NOT_A_DIGIT_HEADLINE not in view.digit_html
    assert list(view.top_probabilities) == ["7", "1", "9"]
    assert "digit score **0.93**" in view.details and "a digit" in view.details
    assert view.message == ""


def test_drawing_judged_not_a_digit_says_so_and_keeps_the_best_guess_secondary():
    view = view_from_result(PredictResult(reply(is_digit=False, digit_score=0.08), 5))
    assert NOT_A_DIGIT_HEADLINE in view.digit_html and 'data-verdict="not_a_digit"' in view.digit_html
    assert "best guess: " in view.digit_html and 'data-best-guess="7"' in view.digit_html
    # No big digit and no confidence headline, in the digit box or in the top-3 label.
    assert "data-digit" not in view.digit_html and "digit-big" not in view.digit_html
    assert "sure" not in view.digit_html and "%" not in view.digit_html
    assert view.top_probabilities is None
    assert view.message == NOT_A_DIGIT_HINT
    assert "digit score **0.08**" in view.details and "not a digit" in view.details
    assert view.processed_image.size == (28, 28)


@pytest.mark.parametrize(
    "judgement",
    [{}, {"is_digit": None, "digit_score": None}, {"is_digit": "false", "digit_score": 0.1}],
    ids=["absent", "null", "not_a_bool"],
)
def test_version_without_a_judgement_keeps_todays_display_and_claims_none(judgement):
    view = view_from_result(PredictResult(reply(**judgement), 5))
    assert 'data-digit="7"' in view.digit_html and "95.0% sure" in view.digit_html
    assert NOT_A_DIGIT_HEADLINE not in view.digit_html and view.message == ""
    assert "no digit judgement" in view.details and "digit score" not in view.details
    assert list(view.top_probabilities) == ["7", "1", "9"]


def test_explanation_heatmap_and_caption_are_shown_when_asked_for():
    view = view_from_result(PredictResult(reply(is_digit=True, explanation=EXPLANATION), 5), explain=True)
    assert view.explanation_image.size == (224, 224)
    assert EXPLAIN_CAPTION in view.explanation_caption and "**7**" in view.explanation_caption
    assert "32 steps from a black image" in view.explanation_caption
    assert view.processed_image.size == (28, 28) and view.message == ""


def test_explanation_is_not_shown_when_not_asked_for():
    view = view_from_result(PredictResult(reply(explanation=EXPLANATION), 5))
    assert view.explanation_image is None and view.explanation_caption == ""


def test_not_a_digit_is_still_explained():
    view = view_from_result(PredictResult(reply(is_digit=False, explanation=EXPLANATION), 5), explain=True)
    assert NOT_A_DIGIT_HEADLINE in view.digit_html and view.explanation_image is not None


@pytest.mark.parametrize(
    ("explanation", "said"),
    [(None, "no explanation"), ({**EXPLANATION, "heatmap_png": "not a png"}, "no readable heat-map")],
)
def test_missing_or_unreadable_explanation_is_said_plainly(explanation, said):
    view = view_from_result(PredictResult(reply(explanation=explanation), 5), explain=True)
    assert view.explanation_image is None and said in view.explanation_caption
    assert 'data-digit="7"' in view.digit_html


def test_refused_explanation_keeps_the_answer_and_says_why():
    answer = view_from_result(PredictResult(reply(), 5))
    refusal = GatewayError(
        "http", "version 1 has no explain signature", status=409, code="explanation_unavailable"
    )
    view = without_explanation(answer, refusal)
    assert 'data-digit="7"' in view.digit_html and view.top_probabilities == answer.top_probabilities
    assert "No explanation" in view.message and "version 1 has no explain signature" in view.message
    assert view.explanation_image is None and "version 1" in view.explanation_caption
