"""TF Serving warm-up records (`assets.extra/tf_serving_warmup_requests`) for an exported version."""

from pathlib import Path

import numpy as np

from contract import layout, mnist

WARMUP_BATCH_SIZES = (1, 8)
# Each signature is warmed: `explain` traces its own graph (32x the images through forward and backward).
WARMUP_SIGNATURES = (mnist.SIGNATURE_NAME, mnist.EXPLAIN_SIGNATURE_NAME)


def write_warmup_requests(version_dir: Path) -> Path:
    """Write PredictionLog records TF Serving replays on load, so a first request is not slow."""
    import tensorflow as tf
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    path = layout.warmup_path(version_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for signature, batch in ((s, b) for s in WARMUP_SIGNATURES for b in WARMUP_BATCH_SIZES):
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name=mnist.MODEL_NAME, signature_name=signature)
            )
            zeros = np.zeros((batch, *mnist.INPUT_SHAPE), dtype=np.float32)
            request.inputs[mnist.INPUT_KEY].CopyFrom(tf.make_tensor_proto(zeros))
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())
    return path
