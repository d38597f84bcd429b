"""The "is this a digit at all?" judgement: the detector logit against a threshold tuned on digits.

Softmax confidence cannot say "not a digit": it only compares the ten classes, so noise gets 1.0 and a
badly written 4 gets less than a star. The CNN's second head (training/model.py) is trained to tell
digits from synthetic non-digits (training/synthetic.py). Its threshold is tuned so that digits (MNIST
validation, drawn and printed ones) are rarely refused, then fixed in the exported SavedModel.
"""

from dataclasses import dataclass

import numpy as np

from contract import mnist


@dataclass(frozen=True)
class DigitJudge:
    """The detector-logit threshold at which digit_score is DIGIT_SCORE_CUT."""

    threshold: float

    def score(self, detector_logit):
        """digit_score in (0, 1) in TensorFlow ops: the cut at the threshold, higher = more digit-like."""
        import tensorflow as tf

        cut = float(np.log(mnist.DIGIT_SCORE_CUT / (1.0 - mnist.DIGIT_SCORE_CUT)))
        return tf.sigmoid(detector_logit - self.threshold + cut)


def tune_threshold(digit_logits: dict[str, tuple[np.ndarray, float]]) -> DigitJudge:
    """The strictest threshold that refuses at most each digit set's budget.

    `digit_logits` maps a set name to (detector logits of its digits, allowed false-reject rate); the
    threshold is the lowest of the per-set quantiles, so every set stays within its budget.
    """
    return DigitJudge(min(float(np.quantile(d, rate)) for d, rate in digit_logits.values()))


def rejected_share(detector_logits: np.ndarray, threshold: float) -> float:
    """Share of inputs the threshold calls "not a digit"."""
    return float(np.mean(np.asarray(detector_logits) < threshold)) if len(detector_logits) else 0.0
