"""Model outputs (either transport) become a Prediction or Explanation, or a 502 when they are unusable."""

import numpy as np
import pytest

from gateway.client.outputs import explanation_from_outputs, prediction_from_outputs
from gateway.client.rest_client import _outputs_from_reply
from gateway.errors import UpstreamError

PROBABILITIES = np.full((2, 10), 0.1, np.float32)


def test_outputs_without_judgement_give_no_judgement():
    prediction = prediction_from_outputs({"probabilities": PROBABILITIES}, 2, 1)
    assert prediction.digit_score is None and prediction.is_digit is None and prediction.version == 1


def test_judgement_outputs_are_read():
    outputs = {
        "probabilities": PROBABILITIES,
        "digit_score": np.array([0.7, 0.2], np.float32),
        "is_digit": np.array([True, False]),
    }
    prediction = prediction_from_outputs(outputs, 2, 3)
    assert prediction.is_digit.tolist() == [True, False]
    assert prediction.digit_score.tolist() == pytest.approx([0.7, 0.2])


@pytest.mark.parametrize(
    "extra",
    [
        {"digit_score": np.array([0.7, 0.2], np.float32)},  # one half of the judgement only
        {"is_digit": np.array([True, False])},
        {"digit_score": np.array([0.7, 1.5], np.float32), "is_digit": np.array([True, True])},
        {"digit_score": np.array([0.7, np.nan], np.float32), "is_digit": np.array([True, True])},
        {"digit_score": np.array([0.7], np.float32), "is_digit": np.array([True])},  # wrong count
        {"digit_score": np.array([0.7, 0.2], np.float32), "is_digit": np.array([1, 0])},  # not bool
    ],
)
def test_a_broken_judgement_is_a_bad_upstream_reply_not_a_guess(extra):
    with pytest.raises(UpstreamError):
        prediction_from_outputs({"probabilities": PROBABILITIES, **extra}, 2, 3)


def test_explanation_outputs_are_checked():
    attribution = np.zeros((2, 28, 28), np.float32)
    explanation = explanation_from_outputs({"attribution": attribution, "digit": np.array([3, 4])}, 2, 5)
    assert explanation.digits.tolist() == [3, 4] and explanation.version == 5
    for broken in (
        {"attribution": attribution},
        {"attribution": attribution[:, :27], "digit": np.array([3, 4])},
        {"attribution": attribution, "digit": np.array([3, 10])},
        {"attribution": attribution + np.inf, "digit": np.array([3, 4])},
    ):
        with pytest.raises(UpstreamError):
            explanation_from_outputs(broken, 2, 5)


def test_rest_columnar_reply_keeps_json_booleans_as_booleans():
    reply = {
        "outputs": {
            "probabilities": PROBABILITIES.tolist(),
            "digit_score": [1, 0.2],
            "is_digit": [True, False],
        }
    }
    arrays = _outputs_from_reply(reply, ("probabilities", "digit_score", "is_digit"), "probabilities")
    prediction = prediction_from_outputs(arrays, 2, 2)
    assert prediction.is_digit.dtype == bool and prediction.is_digit.tolist() == [True, False]
    assert prediction.digit_score.tolist() == pytest.approx([1.0, 0.2])


def test_rest_ragged_output_is_a_bad_upstream_reply():
    with pytest.raises(UpstreamError):
        _outputs_from_reply({"outputs": {"attribution": [[1, 2], [3]]}}, ("attribution",), None)
