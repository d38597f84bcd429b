"""Turn a model reply's outputs (alias -> array, from either transport) into a Prediction or Explanation."""

from collections.abc import Mapping

import numpy as np

from contract.mnist import (
    ATTRIBUTION_KEY,
    DIGIT_KEY,
    DIGIT_SCORE_KEY,
    IMAGE_HEIGHT,
    IMAGE_WIDTH,
    IS_DIGIT_KEY,
    NUM_CLASSES,
    PROBABILITIES_KEY,
)
from gateway.client.base import Explanation, Prediction
from gateway.errors import UpstreamError

# The outputs the gateway reads from each signature; any others a version has are ignored.
PREDICT_OUTPUTS = (PROBABILITIES_KEY, DIGIT_SCORE_KEY, IS_DIGIT_KEY)
EXPLAIN_OUTPUTS = (ATTRIBUTION_KEY, DIGIT_KEY)
# numpy dtype kinds each output may arrive as (JSON writes a whole float like 1.0 as 1).
_KINDS = {
    PROBABILITIES_KEY: "fi",
    DIGIT_SCORE_KEY: "fi",
    IS_DIGIT_KEY: "b",
    ATTRIBUTION_KEY: "fi",
    DIGIT_KEY: "iu",
}


def prediction_from_outputs(outputs: Mapping[str, np.ndarray], count: int, version: int) -> Prediction:
    """The Prediction of `count` images; the judgement only when the version has both of its outputs."""
    probabilities = _output(outputs, PROBABILITIES_KEY, (count, NUM_CLASSES), version).astype(np.float32)
    present = [key for key in (DIGIT_SCORE_KEY, IS_DIGIT_KEY) if key in outputs]
    if not present:
        return Prediction(probabilities=probabilities, version=version)
    if len(present) == 1:
        raise UpstreamError(
            f"model version {version} returns {present[0]!r} without "
            f"{({DIGIT_SCORE_KEY, IS_DIGIT_KEY} - set(present)).pop()!r}"
        )
    score = _output(outputs, DIGIT_SCORE_KEY, (count,), version).astype(np.float32)
    if not np.isfinite(score).all() or score.min(initial=0.0) < 0.0 or score.max(initial=0.0) > 1.0:
        raise UpstreamError(f"model version {version} returned a {DIGIT_SCORE_KEY} outside [0, 1]")
    flag = _output(outputs, IS_DIGIT_KEY, (count,), version).astype(bool)
    return Prediction(probabilities=probabilities, version=version, digit_score=score, is_digit=flag)


def explanation_from_outputs(outputs: Mapping[str, np.ndarray], count: int, version: int) -> Explanation:
    """The Explanation of `count` images from the explain signature's outputs."""
    shape = (count, IMAGE_HEIGHT, IMAGE_WIDTH)
    attribution = _output(outputs, ATTRIBUTION_KEY, shape, version).astype(np.float32)
    if not np.isfinite(attribution).all():
        raise UpstreamError(f"model version {version} returned a non-finite {ATTRIBUTION_KEY}")
    digits = _output(outputs, DIGIT_KEY, (count,), version).astype(np.int64)
    if digits.min(initial=0) < 0 or digits.max(initial=0) >= NUM_CLASSES:
        raise UpstreamError(f"model version {version} explained a digit outside 0-{NUM_CLASSES - 1}")
    return Explanation(attribution=attribution, digits=digits, version=version)


def _output(outputs: Mapping[str, np.ndarray], key: str, shape: tuple[int, ...], version: int) -> np.ndarray:
    if key not in outputs:
        raise UpstreamError(f"model version {version} reply has no {key!r} output")
    array = outputs[key]
    if array.dtype.kind not in _KINDS[key]:
        raise UpstreamError(f"model version {version} returned {key!r} as {array.dtype}")
    if array.shape != shape:
        raise UpstreamError(f"model version {version} returned {key!r} of shape {list(array.shape)}")
    return array
