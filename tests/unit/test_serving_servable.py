"""A real SavedModel version in-process: public signature calls, validation messages, warm-up."""

import gc

import grpc
import numpy as np
import pytest
import tensorflow as tf

from serving.model_server.errors import ServingError
from serving.model_server.servable import Servable
from serving.model_server.server import servable_loader
from tests.support.model_server import default_model_version_dir

IMAGES = np.random.default_rng(5).random((2, 28, 28, 1), dtype=np.float32)


@pytest.fixture(scope="module")
def servable():
    return Servable("mnist", 1, default_model_version_dir())


def test_predict_answers_like_the_public_signature_call(servable):
    loaded = tf.saved_model.load(str(default_model_version_dir()))
    public = {
        k: v.numpy() for k, v in loaded.signatures["serving_default"](image=tf.constant(IMAGES)).items()
    }
    servable.enable_tflite(servable.sample_inputs())  # no tflite_pools: the SavedModel serves
    got = servable.predict("", {"image": IMAGES})
    np.testing.assert_array_equal(got["probabilities"], public["probabilities"])
    np.testing.assert_array_equal(got["digit"], public["digit"])


class Counter(tf.Module):
    """A model whose signature writes a variable: each call must see the last one's write."""

    def __init__(self):
        self.calls = tf.Variable(0.0)
        self.scale = tf.Variable(2.0)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
    def serve(self, x):
        self.calls.assign_add(1.0)
        return {"y": x * self.scale, "calls": tf.fill(tf.shape(x), self.calls.read_value())}


def test_a_signature_that_writes_variables_keeps_its_state(tmp_path):
    module = Counter()
    tf.saved_model.save(module, str(tmp_path / "1"), signatures={"serving_default": module.serve})
    counter = Servable("counter", 1, tmp_path / "1")
    first = counter.predict("", {"x": np.ones(1, np.float32)})["calls"]
    second = counter.predict("", {"x": np.ones(1, np.float32)})["calls"]
    assert second[0] == first[0] + 1


def test_warm_up_replays_the_recorded_requests(servable):
    assert servable.warm_up() > 0


@pytest.mark.parametrize(
    ("signature", "inputs", "code", "message"),
    [
        (
            "nope",
            {"image": IMAGES},
            grpc.StatusCode.FAILED_PRECONDITION,
            'Serving signature key "nope" not found.',
        ),
        (
            "",
            {},
            grpc.StatusCode.INVALID_ARGUMENT,
            "input size does not match signature: 0!=1 len({}) != len({image})",
        ),
        ("", {"image": IMAGES, "extra": IMAGES}, grpc.StatusCode.INVALID_ARGUMENT, "Sent extra: {extra}"),
        (
            "",
            {"pixels": IMAGES},
            grpc.StatusCode.INVALID_ARGUMENT,
            "input tensor alias not found in signature: pixels",
        ),
        (
            "",
            {"image": IMAGES.astype(np.float64)},
            grpc.StatusCode.INVALID_ARGUMENT,
            "Expects arg[0] to be float but double is provided",
        ),
        (
            "",
            {"image": IMAGES[:, :, :, 0]},
            grpc.StatusCode.INVALID_ARGUMENT,
            "incompatible with the signature",
        ),
    ],
)
def test_bad_predict_calls_get_tf_serving_errors(servable, signature, inputs, code, message):
    with pytest.raises(ServingError) as info:
        servable.predict(signature, inputs)
    assert info.value.code == code
    assert message in info.value.message


def test_output_filter_selects_outputs(servable):
    assert set(servable.predict("", {"image": IMAGES}, ("digit",))) == {"digit"}
    with pytest.raises(ServingError, match="output tensor alias not found in signature: nope"):
        servable.predict("", {"image": IMAGES}, ("nope",))


def test_a_loaded_version_is_out_of_the_garbage_collectors_reach():
    # Full collections walking TensorFlow's objects stalled every request now and then (README, Performance).
    gc.unfreeze()
    try:
        loaded = servable_loader(warm_up=False)("mnist", 1, default_model_version_dir())
        assert gc.get_freeze_count() > 0
        assert all(tracked is not loaded for tracked in gc.get_objects())
    finally:
        gc.unfreeze()
