"""The Mahalanobis digit judge: near the training clusters is a digit, far from all of them is not."""

import numpy as np
import pytest

from contract import mnist
from training.judgement import fit_judge, rejected_share, tune_threshold

tf = pytest.importorskip("tensorflow")


def clusters(rng, n_per_class=300, dims=16, spread=0.3):
    """Ten well-separated Gaussian clusters in `dims` dimensions, elongated along random axes."""
    centres = rng.normal(0, 3, size=(mnist.NUM_CLASSES, dims))
    mixing = rng.normal(0, spread, size=(dims, dims))
    labels = np.repeat(np.arange(mnist.NUM_CLASSES), n_per_class)
    features = centres[labels] + rng.normal(size=(len(labels), dims)) @ mixing
    return features.astype(np.float32), labels, centres


def test_points_of_the_clusters_are_nearer_than_points_between_them():
    rng = np.random.default_rng(0)
    features, labels, centres = clusters(rng)
    judge = fit_judge(features, labels)
    inside = np.asarray(judge.distance(features[:500]))
    between = np.asarray(judge.distance(((centres[:5] + centres[5:]) / 2).astype(np.float32)))
    assert np.median(inside) < between.min()


def test_distance_is_the_mahalanobis_distance_under_the_fitted_covariance():
    rng = np.random.default_rng(1)
    features, labels, _ = clusters(rng)
    judge = fit_judge(features, labels)
    point = rng.normal(size=(1, features.shape[1])).astype(np.float32)
    precision = judge.whitening.astype(np.float64) @ judge.whitening.T.astype(np.float64)
    expected = min(float((point[0] - m) @ precision @ (point[0] - m)) for m in judge.means)
    assert float(judge.distance(point)[0]) == pytest.approx(expected, rel=1e-3)


def test_tuned_threshold_refuses_no_more_than_each_budget():
    rng = np.random.default_rng(2)
    a, b = rng.chisquare(16, 5000), rng.chisquare(16, 2000) * 1.3
    features, labels, _ = clusters(rng)
    judge = tune_threshold(fit_judge(features, labels), {"a": (a, 0.001), "b": (b, 0.01)})
    assert rejected_share(a, judge.threshold) <= 0.001
    assert rejected_share(b, judge.threshold) <= 0.01
    # The binding set is at its budget, not far under it: the threshold is no more lenient than needed.
    assert max(rejected_share(a, judge.threshold) / 0.001, rejected_share(b, judge.threshold) / 0.01) >= 0.5


def test_score_is_the_cut_at_the_threshold_and_falls_with_distance():
    rng = np.random.default_rng(3)
    features, labels, _ = clusters(rng)
    judge = tune_threshold(fit_judge(features, labels), {"a": (rng.chisquare(16, 1000), 0.01)})
    distances = tf.constant([judge.threshold / 4, judge.threshold, judge.threshold * 4], tf.float32)
    scores = np.asarray(judge.score(distances))
    assert scores[1] == pytest.approx(mnist.DIGIT_SCORE_CUT, abs=1e-4)
    assert scores[0] > scores[1] > scores[2]
    assert np.all((scores > 0) & (scores < 1))
