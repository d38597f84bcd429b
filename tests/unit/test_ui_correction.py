"""A correction sends the image of the answer shown with the clicked digit, and says honestly how it went."""

import pytest

from ui.client import FeedbackRequest, GatewayError, PredictRequest
from ui.correction import (
    NOTHING_TO_CORRECT_MESSAGE,
    Correctable,
    correctable,
    correction_error_message,
    parse_digit,
    send_correction,
    thanks_message,
)

REQUEST = PredictRequest(
    image=b"\x89PNG-drawn",
    filename="digit.png",
    content_type="image/png",
    params={"preprocessing": "standard", "return_processed": "true"},
)
REPLY = {
    "digit": 1,
    "confidence": 0.6,
    "probabilities": [0.01] + [0.6] + [0.04] * 8,
    "model": {"name": "mnist", "version": 2, "label": "canary"},
    "preprocessing": "standard",
}
ANSWER = Correctable(
    image=b"\x89PNG-drawn",
    filename="digit.png",
    content_type="image/png",
    predicted=1,
    version=2,
    preprocessing="standard",
)


class FakeGateway:
    """Answers each feedback call with the record it would store, or a scripted error; records the calls."""

    def __init__(self, error: GatewayError | None = None, record: dict | None = None):
        self.error = error
        self.record = record
        self.sent: list[FeedbackRequest] = []

    def feedback(self, request: FeedbackRequest) -> dict:
        self.sent.append(request)
        if self.error is not None:
            raise self.error
        if self.record is not None:
            return self.record
        return {"id": len(self.sent), "label": request.label, "predicted": request.predicted}


def test_answer_keeps_the_image_sent_and_what_the_reply_said():
    assert correctable(REQUEST, REPLY) == ANSWER


def test_not_a_digit_verdict_is_still_correctable_as_its_best_guess():
    answer = correctable(REQUEST, {**REPLY, "is_digit": False, "digit_score": 0.1})
    assert answer is not None and answer.predicted == 1


@pytest.mark.parametrize(
    "reply",
    [
        {"unexpected": True},
        {**REPLY, "digit": None},
        {**REPLY, "digit": True},
        {**REPLY, "digit": 10},
        {**REPLY, "probabilities": None},
    ],
    ids=["no_prediction", "null_digit", "bool_digit", "out_of_range", "no_probabilities"],
)
def test_reply_without_a_prediction_is_nothing_to_correct(reply):
    assert correctable(REQUEST, reply) is None


def test_reply_that_does_not_say_version_or_mode_sends_none_rather_than_a_guess():
    answer = correctable(REQUEST, {"digit": 4, "probabilities": [0.1] * 10, "model": {"version": "2"}})
    assert (answer.predicted, answer.version, answer.preprocessing) == (4, None, None)


def test_correction_sends_the_same_image_the_clicked_digit_and_the_reply_seen():
    gateway = FakeGateway()
    message, left = send_correction(gateway, ANSWER, "7")
    assert gateway.sent == [
        FeedbackRequest(
            image=b"\x89PNG-drawn",
            label=7,
            filename="digit.png",
            content_type="image/png",
            predicted=1,
            version=2,
            preprocessing="standard",
        )
    ]
    assert message == "Thanks — saved as a **7** (the model said 1)."
    assert left is None  # used up: a second click cannot store a second record


def test_thanks_comes_from_the_stored_record():
    assert thanks_message({"label": 3, "predicted": None}) == "Thanks — saved as a **3**."


def test_reply_that_does_not_confirm_the_label_is_no_thanks():
    gateway = FakeGateway(record={"id": 1, "label": 2})
    message, left = send_correction(gateway, ANSWER, 7)
    assert "Thanks" not in message and "may not have been saved" in message and left == ANSWER


def test_nothing_to_correct_calls_no_one():
    gateway = FakeGateway()
    assert send_correction(gateway, None, "7") == (NOTHING_TO_CORRECT_MESSAGE, None)
    assert gateway.sent == []


@pytest.mark.parametrize("value", ["x", "10", "-1", None, True, 7.0])
def test_a_value_that_is_not_a_digit_is_not_sent(value):
    gateway = FakeGateway()
    message, left = send_correction(gateway, ANSWER, value)
    assert "Pick a digit" in message and left == ANSWER and gateway.sent == []


@pytest.mark.parametrize(("value", "digit"), [("0", 0), (" 9 ", 9), (5, 5), ("10", None), (False, None)])
def test_parse_digit(value, digit):
    assert parse_digit(value) == digit


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (GatewayError("unreachable", "the gateway at http://gw is not reachable"), "not reachable"),
        (GatewayError("timeout", "the gateway did not answer within 5 s"), "may not have been saved"),
        (GatewayError("bad_reply", "the gateway sent a reply that is not JSON"), "may not have been saved"),
        (
            GatewayError("http", "database locked", status=503, code="storage_unavailable"),
            "storage is unavailable right now. Please retry later.",
        ),
        (GatewayError("http", "model down", status=503, code="upstream_unavailable"), "retry later"),
        (
            GatewayError("http", "label must be an integer from 0 to 9", status=400, code="bad_option"),
            "refused the correction: label must be an integer from 0 to 9",
        ),
        (GatewayError("http", "no digit found", status=422, code="no_digit"), "refused the correction"),
        (GatewayError("http", "boom", status=500, code="internal"), "had a problem"),
    ],
    ids=["unreachable", "timeout", "bad_reply", "storage_503", "other_503", "400", "422", "500"],
)
def test_failure_is_said_plainly_and_the_answer_stays_correctable(error, said):
    message, left = send_correction(FakeGateway(error=error), ANSWER, "7")
    assert said in message and "Thanks" not in message and "Traceback" not in message
    assert left == ANSWER  # so the person can try again
    assert message == correction_error_message(error)


def test_error_text_from_the_gateway_is_escaped():
    message = correction_error_message(GatewayError("http", "<b>bad</b>", status=400))
    assert "<b>" not in message and "&lt;b&gt;" in message
