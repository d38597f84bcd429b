"""Small SavedModels with the contract's two signatures, and the newest real version that has both."""

from pathlib import Path

import numpy as np

from contract import layout, mnist
from tests.support.model_server import COMMITTED_MODEL_DIR

PIXELS = mnist.IMAGE_HEIGHT * mnist.IMAGE_WIDTH


def signature_names(version_dir: Path) -> set[str]:
    """The SignatureDef keys of a version's serving MetaGraphDef, read from saved_model.pb."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved_model = saved_model_pb2.SavedModel.FromString(
        (Path(version_dir) / layout.SAVED_MODEL_FILE).read_bytes()
    )
    return {
        name for graph in saved_model.meta_graphs for name in graph.signature_def if not name.startswith("__")
    }


def newest_version_with(signature: str, base: Path = COMMITTED_MODEL_DIR) -> Path | None:
    """The highest version under `base` whose SavedModel has `signature`, or None."""
    for _, path in sorted(layout.list_versions(base).items(), reverse=True):
        if (path / layout.SAVED_MODEL_FILE).is_file() and signature in signature_names(path):
            return path
    return None


def linear_weights(seed: int = 0) -> np.ndarray:
    """The [784, 10] weights of the small model: seeded, so tests can compute its answers themselves."""
    return np.random.default_rng(seed).normal(0.0, 0.1, (PIXELS, mnist.NUM_CLASSES)).astype(np.float32)


def expected_outputs(images: np.ndarray, weights: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
    """What the small model answers for `images`, per signature, computed in numpy."""
    logits = images.reshape(len(images), PIXELS) @ weights
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    digit = logits.argmax(axis=1).astype(np.int64)
    score = 1.0 / (1.0 + np.exp(-(images.reshape(len(images), -1).mean(axis=1) * 20.0 - 2.0)))
    attribution = images[..., 0] * weights[:, digit].T.reshape(-1, mnist.IMAGE_HEIGHT, mnist.IMAGE_WIDTH)
    return {
        mnist.SIGNATURE_NAME: {
            mnist.PROBABILITIES_KEY: shifted / shifted.sum(axis=1, keepdims=True),
            mnist.DIGIT_KEY: digit,
            mnist.DIGIT_SCORE_KEY: score.astype(np.float32),
            mnist.IS_DIGIT_KEY: score >= mnist.DIGIT_SCORE_CUT,
        },
        mnist.EXPLAIN_SIGNATURE_NAME: {mnist.ATTRIBUTION_KEY: attribution, mnist.DIGIT_KEY: digit},
    }


def write_two_signature_model(version_dir: Path, seed: int = 0, tflite: bool = False) -> Path:
    """A linear 28x28 -> 10 model with `serving_default` and `explain` as the contract defines them.

    Its digit_score grows with the mean pixel value, so a black image is "not a digit" and a bright one
    is; its attribution is the exact integrated gradients of a linear logit (pixel times weight). With
    `tflite`, model.tflite holds serving_default only, as training/export.py writes it.
    """
    import tensorflow as tf

    weights = tf.Variable(linear_weights(seed))
    module = tf.Module()
    module.weights = weights
    spec = tf.TensorSpec([None, *mnist.INPUT_SHAPE], tf.float32, name=mnist.INPUT_KEY)

    def logits_of(image):
        return tf.reshape(image, [-1, PIXELS]) @ weights

    @tf.function(input_signature=[spec])
    def serve(image):
        logits = logits_of(image)
        score = tf.sigmoid(tf.reduce_mean(tf.reshape(image, [-1, PIXELS]), axis=1) * 20.0 - 2.0)
        return {
            mnist.PROBABILITIES_KEY: tf.nn.softmax(logits),
            mnist.DIGIT_KEY: tf.argmax(logits, axis=-1, output_type=tf.int64),
            mnist.DIGIT_SCORE_KEY: score,
            mnist.IS_DIGIT_KEY: score >= mnist.DIGIT_SCORE_CUT,
        }

    @tf.function(input_signature=[spec])
    def explain(image):
        digit = tf.argmax(logits_of(image), axis=-1, output_type=tf.int64)
        per_digit = tf.transpose(tf.gather(weights, digit, axis=1))
        shape = [-1, mnist.IMAGE_HEIGHT, mnist.IMAGE_WIDTH]
        return {mnist.ATTRIBUTION_KEY: image[..., 0] * tf.reshape(per_digit, shape), mnist.DIGIT_KEY: digit}

    version_dir = Path(version_dir)
    tf.saved_model.save(
        module,
        str(version_dir),
        signatures={mnist.SIGNATURE_NAME: serve, mnist.EXPLAIN_SIGNATURE_NAME: explain},
    )
    if tflite:
        from training.export import write_tflite

        write_tflite(version_dir)
    return version_dir


def write_warmup_records(version_dir: Path, requests: list[tuple[str, int]]) -> Path:
    """assets.extra/tf_serving_warmup_requests with one zero-image PredictLog per (signature, rows)."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    path = layout.warmup_path(version_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for signature, rows in requests:
            request = predict_pb2.PredictRequest()
            request.model_spec.name = mnist.MODEL_NAME
            request.model_spec.signature_name = signature
            zeros = np.zeros((rows, *mnist.INPUT_SHAPE), dtype=np.float32)
            request.inputs[mnist.INPUT_KEY].CopyFrom(tf.make_tensor_proto(zeros))
            entry = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
            writer.write(entry.SerializeToString())
    return path
