"""Two signatures in-process: each served as TF Serving serves it, also under --prefer_tflite_model."""

import logging

import grpc
import numpy as np
import pytest

from contract import mnist
from serving.model_server.batching import Batcher
from serving.model_server.config import BatchingSettings
from serving.model_server.errors import ServingError
from serving.model_server.servable import Servable
from serving.model_server.server import servable_loader
from tests.support.signature_models import (
    expected_outputs,
    linear_weights,
    write_two_signature_model,
    write_warmup_records,
)

IMAGES = np.concatenate(
    [
        np.zeros((1, *mnist.INPUT_SHAPE), np.float32),
        np.random.default_rng(3).random((2, *mnist.INPUT_SHAPE), np.float32),
    ]
)
EXPECTED = expected_outputs(IMAGES, linear_weights())
INIT_OP = "__saved_model_init_op"  # the SignatureDef TF2 SavedModels carry for their initializers


@pytest.fixture(scope="module")
def version_dir(tmp_path_factory):
    return write_two_signature_model(tmp_path_factory.mktemp("two") / "1", tflite=True)


def assert_outputs(got: dict, expected: dict) -> None:
    assert set(got) == set(expected)
    for alias, want in expected.items():
        assert got[alias].dtype == want.dtype, alias
        if want.dtype.kind == "f":
            np.testing.assert_allclose(got[alias], want, rtol=1e-4, atol=1e-5)
        else:
            np.testing.assert_array_equal(got[alias], want)


def test_both_signatures_are_served_from_the_saved_model(version_dir):
    servable = Servable("mnist", 1, version_dir)
    servable.enable_tflite(servable.sample_inputs())  # no tflite_pools: nothing changes
    # Every SignatureDef of the SavedModel, as TF Serving's GetModelMetadata lists them.
    assert set(servable.signature_defs) == {mnist.SIGNATURE_NAME, mnist.EXPLAIN_SIGNATURE_NAME, INIT_OP}
    for signature, expected in EXPECTED.items():
        assert_outputs(servable.predict(signature, {mnist.INPUT_KEY: IMAGES}), expected)
    assert EXPECTED[mnist.SIGNATURE_NAME][mnist.IS_DIGIT_KEY].tolist() == [False, True, True]


def test_the_init_op_signature_is_listed_but_answers_an_error_not_a_crash(version_dir):
    servable = Servable("mnist", 1, version_dir)
    with pytest.raises(ServingError) as info:
        servable.predict(INIT_OP, {mnist.INPUT_KEY: IMAGES})
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.message.startswith("input size does not match signature: 1!=0")  # predict_util.cc
    with pytest.raises(ServingError) as info:
        servable.predict(INIT_OP, {})
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT


def test_output_filter_applies_to_the_signature_asked_for(version_dir):
    servable = Servable("mnist", 1, version_dir)
    got = servable.predict(mnist.EXPLAIN_SIGNATURE_NAME, {mnist.INPUT_KEY: IMAGES}, (mnist.DIGIT_KEY,))
    assert set(got) == {mnist.DIGIT_KEY}
    with pytest.raises(ServingError) as info:
        servable.predict(mnist.EXPLAIN_SIGNATURE_NAME, {mnist.INPUT_KEY: IMAGES}, (mnist.PROBABILITIES_KEY,))
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.message == (
        "output tensor alias not found in signature: probabilities Outputs expected to be in the set "
        "{attribution,digit}."
    )


def test_under_prefer_tflite_only_the_tflite_files_signatures_are_served(version_dir, caplog):
    # TF Serving's TfLiteSession replaces the SavedModel, so `explain` (not in model.tflite) is not served.
    servable = Servable("mnist", 1, version_dir, tflite_pools=1)
    with caplog.at_level(logging.WARNING):
        servable.enable_tflite(servable.sample_inputs())
    assert set(servable.signature_defs) == {mnist.SIGNATURE_NAME}
    assert "Signature explain of" in caplog.text and "is not served" in caplog.text
    with pytest.raises(ServingError) as info:
        servable.predict(mnist.EXPLAIN_SIGNATURE_NAME, {mnist.INPUT_KEY: IMAGES})
    assert info.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert info.value.message == 'Serving signature key "explain" not found.'
    assert_outputs(servable.predict("", {mnist.INPUT_KEY: IMAGES}), EXPECTED[mnist.SIGNATURE_NAME])


@pytest.fixture
def with_warmup(version_dir, tmp_path):
    import shutil

    copy = tmp_path / "1"
    shutil.copytree(version_dir, copy)
    write_warmup_records(copy, [(mnist.SIGNATURE_NAME, 1), (mnist.EXPLAIN_SIGNATURE_NAME, 8)])
    return copy


def test_warm_up_replays_records_of_either_signature(with_warmup):
    servable = Servable("mnist", 1, with_warmup)
    assert servable.warm_up() == 2


def test_under_prefer_tflite_an_explain_warm_up_record_fails_the_load(with_warmup):
    # TF Serving replays warm-up on the TfLiteSession's signatures: the record fails, and so does the load.
    with pytest.raises(ServingError) as info:
        servable_loader(warm_up=True, tflite_pools=1)("mnist", 1, with_warmup)
    assert info.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert info.value.message == 'Serving signature key "explain" not found.'


@pytest.fixture
def batcher():
    made = Batcher(
        BatchingSettings(
            max_batch_size=16,
            batch_timeout_micros=0,
            max_enqueued_batches=4,
            num_batch_threads=1,
            enable_large_batch_splitting=True,
            max_execution_batch_size=4,
        )
    )
    yield made
    made.stop()


def test_warm_up_goes_through_the_batcher_like_tf_servings_batching_session(version_dir, tmp_path, batcher):
    import shutil

    copy = tmp_path / "1"
    shutil.copytree(version_dir, copy)
    write_warmup_records(copy, [(mnist.EXPLAIN_SIGNATURE_NAME, 17)])  # over max_batch_size 16
    with pytest.raises(ServingError, match="Task size 17 is larger than maximum input batch size 16"):
        servable_loader(warm_up=True, batcher=batcher)("mnist", 1, copy)


def test_a_batched_explain_request_is_split_and_answered_whole(version_dir, batcher):
    servable = Servable("mnist", 1, version_dir)
    images = np.random.default_rng(9).random((11, *mnist.INPUT_SHAPE), np.float32)
    got = batcher.run(servable, mnist.EXPLAIN_SIGNATURE_NAME, {mnist.INPUT_KEY: images})
    assert_outputs(got, expected_outputs(images, linear_weights())[mnist.EXPLAIN_SIGNATURE_NAME])


def test_an_unknown_signature_is_failed_precondition_before_the_batch_size_check(version_dir, batcher):
    servable = Servable("mnist", 1, version_dir)
    images = np.zeros((17, *mnist.INPUT_SHAPE), np.float32)
    with pytest.raises(ServingError) as info:
        batcher.run(servable, "nope", {mnist.INPUT_KEY: images})
    assert info.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert info.value.message == 'Serving signature key "nope" not found.'
