"""The "is this a digit at all?" score: Mahalanobis distance of the penultimate features to the digit classes.

Softmax confidence cannot say "not a digit" (noise gets 1.0): it only compares the ten classes. The
features the classifier computes before its last layer can: digits fall into ten tight clusters, and
anything else lands away from all of them. The score is the squared Mahalanobis distance to the nearest
class mean under one shared covariance (Lee et al., 2018), fitted on training digits only. The threshold is
tuned so that digits (MNIST validation, drawn and printed ones) are rarely refused, and fixed at export.
"""

from dataclasses import dataclass

import numpy as np

from contract import mnist

# Added to the covariance's diagonal, as a share of its mean variance: keeps the inverse stable where a
# feature (a ReLU unit) is almost never active.
SHRINKAGE = 0.01


@dataclass(frozen=True)
class DigitJudge:
    """Class means and a whitening matrix (W W^T = inverse covariance), the threshold and the score scale."""

    means: np.ndarray  # [10, D]
    whitening: np.ndarray  # [D, D]
    threshold: float = float("inf")  # squared distance at which digit_score is DIGIT_SCORE_CUT
    scale: float = 1.0  # spread of ln(distance) that maps onto the score's sigmoid

    def distance(self, features):
        """Squared Mahalanobis distance to the nearest class mean, in TensorFlow ops (eager or traced)."""
        import tensorflow as tf

        whitened = tf.matmul(features, tf.constant(self.whitening, tf.float32))
        centres = tf.constant(self.means @ self.whitening, tf.float32)
        squared = tf.reduce_sum(tf.square(whitened[:, None, :] - centres[None, :, :]), axis=-1)
        return tf.reduce_min(squared, axis=-1)

    def score(self, distance):
        """digit_score in (0, 1): DIGIT_SCORE_CUT exactly at the threshold, higher nearer the digits."""
        import tensorflow as tf

        log_ratio = tf.math.log(tf.constant(self.threshold, tf.float32)) - tf.math.log(distance + 1e-6)
        return tf.sigmoid(log_ratio / self.scale + _logit(mnist.DIGIT_SCORE_CUT))


def _logit(p: float) -> float:
    return float(np.log(p / (1.0 - p)))


def fit_judge(features: np.ndarray, labels: np.ndarray) -> DigitJudge:
    """Class means and the shared covariance of training-digit features (no outliers needed)."""
    features = np.asarray(features, np.float64)
    means = np.stack([features[labels == c].mean(axis=0) for c in range(mnist.NUM_CLASSES)])
    centred = features - means[labels]
    covariance = centred.T @ centred / len(features)
    covariance += SHRINKAGE * np.trace(covariance) / len(covariance) * np.eye(len(covariance))
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    whitening = eigenvectors / np.sqrt(eigenvalues)[None, :]
    return DigitJudge(means=means.astype(np.float32), whitening=whitening.astype(np.float32))


def tune_threshold(judge: DigitJudge, digit_distances: dict[str, tuple[np.ndarray, float]]) -> DigitJudge:
    """The strictest threshold that refuses at most each digit set's budget; the scale from MNIST's spread.

    `digit_distances` maps a set name to (distances, allowed false-reject rate). The threshold is the
    largest of the per-set quantiles, so every set stays within its budget.
    """
    threshold = max(float(np.quantile(d, 1.0 - rate)) for d, rate in digit_distances.values())
    reference = next(iter(digit_distances.values()))[0]
    scale = float(np.std(np.log(reference + 1e-6)))
    return DigitJudge(judge.means, judge.whitening, threshold=threshold, scale=max(scale, 1e-3))


def rejected_share(distances: np.ndarray, threshold: float) -> float:
    """Share of inputs the threshold calls "not a digit"."""
    return float(np.mean(np.asarray(distances) > threshold)) if len(distances) else 0.0
