"""One gateway call per prediction; a second, plain one only when the version cannot explain."""

import pytest

from ui.client import GatewayError, PredictRequest, PredictResult
from ui.predict import EXPLANATION_UNAVAILABLE, predict_answer, predict_view
from ui.present import NOT_A_DIGIT_HEADLINE

PLAIN = {"preprocessing": "enhanced", "return_processed": "true"}
EXPLAINED = {**PLAIN, "explain": "true"}
REPLY = {
    "digit": 3,
    "confidence": 0.9,
    "probabilities": [0.01] * 3 + [0.9] + [0.01] * 6,
    "model": {"name": "mnist", "version": 2},
    "preprocessing": "enhanced",
}
REFUSAL = GatewayError("http", "version 1 has no explain signature", status=409, code=EXPLANATION_UNAVAILABLE)


class FakeGateway:
    """Answers each predict with the next scripted reply or error, and records the params it saw."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.seen: list[dict[str, str]] = []

    def predict(self, request: PredictRequest) -> PredictResult:
        self.seen.append(dict(request.params))
        answer = self.answers.pop(0)
        if isinstance(answer, GatewayError):
            raise answer
        return PredictResult(reply=answer, round_trip_ms=1.0)


def test_explain_off_is_one_plain_call():
    gateway = FakeGateway(REPLY)
    view = predict_view(gateway, PredictRequest(image=b"png", params=PLAIN))
    assert gateway.seen == [PLAIN]
    assert 'data-digit="3"' in view.digit_html and view.explanation_caption == ""


def test_explain_on_is_one_call_that_asks_for_the_explanation():
    gateway = FakeGateway({**REPLY, "is_digit": False})
    view = predict_view(gateway, PredictRequest(image=b"png", params=EXPLAINED))
    assert gateway.seen == [EXPLAINED]
    assert NOT_A_DIGIT_HEADLINE in view.digit_html and "no explanation" in view.explanation_caption


def test_version_without_explain_still_shows_the_answer_and_why_there_is_no_heatmap():
    gateway = FakeGateway(REFUSAL, REPLY)
    view = predict_view(gateway, PredictRequest(image=b"png", params=EXPLAINED))
    assert gateway.seen == [EXPLAINED, PLAIN]
    assert 'data-digit="3"' in view.digit_html
    assert "No explanation" in view.message and "version 1 has no explain signature" in view.message


def test_other_failures_are_not_retried():
    unavailable = GatewayError("http", "model not available", status=503, code="unavailable")
    gateway = FakeGateway(unavailable)
    view = predict_view(gateway, PredictRequest(image=b"png", params=EXPLAINED))
    assert gateway.seen == [EXPLAINED] and "not ready" in view.message


def test_a_failed_retry_is_reported():
    gateway = FakeGateway(REFUSAL, GatewayError("unreachable", "the gateway at http://x is not reachable"))
    view = predict_view(gateway, PredictRequest(image=b"png", params=EXPLAINED))
    assert len(gateway.seen) == 2 and "down" in view.message and "data-digit" not in view.digit_html


def test_the_answer_shown_is_kept_with_the_image_sent_for_it():
    view, answer = predict_answer(FakeGateway(REPLY), PredictRequest(image=b"png", params=PLAIN))
    assert 'data-digit="3"' in view.digit_html
    assert answer.image == b"png" and answer.predicted == 3
    assert (answer.version, answer.preprocessing) == (2, "enhanced")


def test_the_answer_of_the_plain_retry_is_kept():
    gateway = FakeGateway(REFUSAL, {**REPLY, "digit": 8})
    view, answer = predict_answer(gateway, PredictRequest(image=b"png", params=EXPLAINED))
    assert 'data-digit="8"' in view.digit_html and answer.predicted == 8 and answer.image == b"png"


@pytest.mark.parametrize(
    "answers",
    [
        (GatewayError("http", "model not available", status=503, code="unavailable"),),
        (REFUSAL, GatewayError("unreachable", "the gateway at http://x is not reachable")),
        ({"unexpected": True},),
    ],
    ids=["failure", "failed_retry", "reply_without_prediction"],
)
def test_no_answer_shown_is_nothing_to_correct(answers):
    _, answer = predict_answer(FakeGateway(*answers), PredictRequest(image=b"png", params=EXPLAINED))
    assert answer is None
