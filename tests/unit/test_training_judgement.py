"""The digit judgement: a detector-logit threshold tuned on digits, and the score it is served as."""

import numpy as np
import pytest

from contract import mnist
from training.judgement import DigitJudge, rejected_share, tune_threshold

tf = pytest.importorskip("tensorflow")


def test_tuned_threshold_refuses_no_more_than_each_budget():
    rng = np.random.default_rng(2)
    a, b = rng.normal(8, 2, 5000), rng.normal(6, 3, 2000)
    judge = tune_threshold({"a": (a, 0.001), "b": (b, 0.01)})
    assert rejected_share(a, judge.threshold) <= 0.001
    assert rejected_share(b, judge.threshold) <= 0.01
    # The binding set is at its budget, not far under it: the threshold is no more lenient than needed.
    assert max(rejected_share(a, judge.threshold) / 0.001, rejected_share(b, judge.threshold) / 0.01) >= 0.5


def test_score_is_the_cut_at_the_threshold_and_rises_with_the_logit():
    judge = DigitJudge(threshold=1.5)
    scores = np.asarray(judge.score(tf.constant([-3.0, 1.5, 6.0])))
    assert scores[1] == pytest.approx(mnist.DIGIT_SCORE_CUT, abs=1e-6)
    assert scores[0] < scores[1] < scores[2]
    assert np.all((scores > 0) & (scores < 1))


def test_is_digit_and_rejected_share_agree_at_the_threshold():
    judge = DigitJudge(threshold=0.0)
    logits = np.array([-0.1, 0.0, 0.1], np.float32)
    is_digit = np.asarray(judge.score(tf.constant(logits))) >= mnist.DIGIT_SCORE_CUT
    assert list(is_digit) == [False, True, True]
    assert rejected_share(logits, judge.threshold) == pytest.approx(1 / 3)
