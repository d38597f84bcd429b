"""The gateway's TF-free protobuf messages are byte-compatible with the official TF Serving protos."""

import re
from pathlib import Path

import numpy as np
import pytest

from gateway.client.grpc_client import array_from_tensor, tensor_from_array
from gateway.proto import stubs
from gateway.proto import tf_serving_subset_pb2 as ours

# The official modules import TensorFlow: fine in a test process, never in the gateway.
tf = pytest.importorskip("tensorflow")
official_predict = pytest.importorskip("tensorflow_serving.apis.predict_pb2")
from tensorflow_serving.apis import get_model_metadata_pb2 as official_metadata  # noqa: E402
from tensorflow_serving.apis import get_model_status_pb2 as official_status  # noqa: E402
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc  # noqa: E402


def test_predict_request_encoded_by_gateway_decodes_officially():
    images = np.random.default_rng(0).random((3, 28, 28, 1)).astype(np.float32)
    request = ours.PredictRequest(output_filter=["probabilities"])
    request.model_spec.name = "mnist"
    request.model_spec.signature_name = "serving_default"
    request.model_spec.version.value = 7
    request.inputs["image"].CopyFrom(tensor_from_array(images))

    decoded = official_predict.PredictRequest.FromString(request.SerializeToString())
    assert decoded.model_spec.name == "mnist" and decoded.model_spec.version.value == 7
    assert decoded.model_spec.signature_name == "serving_default"
    assert list(decoded.output_filter) == ["probabilities"]
    assert decoded.inputs["image"].dtype == tf.float32.as_datatype_enum
    assert np.array_equal(tf.make_ndarray(decoded.inputs["image"]), images)
    assert decoded.SerializeToString() == request.SerializeToString()


@pytest.mark.parametrize("use_tensor_content", [True, False])
def test_official_predict_response_decodes_in_gateway(use_tensor_content):
    probabilities = np.random.default_rng(1).dirichlet(np.ones(10), size=4).astype(np.float32)
    response = official_predict.PredictResponse()
    response.model_spec.name = "mnist"
    response.model_spec.version.value = 3
    if use_tensor_content:
        response.outputs["probabilities"].CopyFrom(tf.make_tensor_proto(probabilities))
    else:  # float_val form, as some servers send it
        tensor = response.outputs["probabilities"]
        tensor.dtype = tf.float32.as_datatype_enum
        tensor.tensor_shape.dim.add(size=4)
        tensor.tensor_shape.dim.add(size=10)
        tensor.float_val.extend(probabilities.ravel().tolist())
    response.outputs["digit"].CopyFrom(tf.make_tensor_proto(np.argmax(probabilities, 1).astype(np.int64)))

    decoded = ours.PredictResponse.FromString(response.SerializeToString())
    assert decoded.model_spec.version.value == 3
    assert np.array_equal(array_from_tensor(decoded.outputs["probabilities"]), probabilities)
    assert list(decoded.outputs["digit"].int64_val) or decoded.outputs["digit"].tensor_content


def test_label_model_spec_and_metadata_response_round_trip():
    request = ours.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = "mnist"
    request.model_spec.version_label = "stable"
    decoded = official_metadata.GetModelMetadataRequest.FromString(request.SerializeToString())
    assert decoded.model_spec.version_label == "stable" and list(decoded.metadata_field) == ["signature_def"]

    response = official_metadata.GetModelMetadataResponse()
    response.model_spec.name = "mnist"
    response.model_spec.version.value = 5
    signature_map = official_metadata.SignatureDefMap()
    signature_map.signature_def["serving_default"].method_name = "tensorflow/serving/predict"
    response.metadata["signature_def"].Pack(signature_map)
    ours_response = ours.GetModelMetadataResponse.FromString(response.SerializeToString())
    assert ours_response.model_spec.version.value == 5
    assert ours_response.metadata["signature_def"].type_url.endswith("tensorflow.serving.SignatureDefMap")


def test_model_status_response_decodes_in_gateway():
    response = official_status.GetModelStatusResponse()
    for version, state in ((1, 30), (2, 20), (3, 50)):
        entry = response.model_version_status.add(version=version, state=state)
        entry.status.error_code = 0
    decoded = ours.GetModelStatusResponse.FromString(response.SerializeToString())
    names = [ours.ModelVersionStatus.State.Name(item.state) for item in decoded.model_version_status]
    assert [item.version for item in decoded.model_version_status] == [1, 2, 3]
    assert names == ["AVAILABLE", "LOADING", "END"]


def test_grpc_method_paths_match_the_official_services():
    official_paths = set()
    for module in (prediction_service_pb2_grpc, model_service_pb2_grpc):
        official_paths |= set(
            re.findall(r"'(/tensorflow\.serving\.\w+/\w+)'", Path(module.__file__).read_text())
        )
    assert {
        stubs.PREDICT_METHOD,
        stubs.GET_MODEL_METADATA_METHOD,
        stubs.GET_MODEL_STATUS_METHOD,
    } <= official_paths


@pytest.mark.parametrize("use_tensor_content", [True, False])
def test_official_judgement_and_explain_outputs_decode_in_gateway(use_tensor_content):
    """digit_score (float), is_digit (DT_BOOL), attribution and digit (int64), in both encodings."""
    arrays = {
        "digit_score": np.array([0.9, 0.1, 0.5], np.float32),
        "is_digit": np.array([True, False, True]),
        "attribution": np.random.default_rng(2).normal(size=(3, 28, 28)).astype(np.float32),
        "digit": np.array([7, 1, 4], np.int64),
    }
    response = official_predict.PredictResponse()
    for key, array in arrays.items():
        if use_tensor_content:
            response.outputs[key].CopyFrom(tf.make_tensor_proto(array))
        else:  # typed fields, as TF Serving's AsProtoField writes them
            tensor = response.outputs[key]
            tensor.dtype = tf.as_dtype(array.dtype).as_datatype_enum
            for size in array.shape:
                tensor.tensor_shape.dim.add(size=size)
            field = {"digit_score": "float_val", "is_digit": "bool_val", "attribution": "float_val"}
            getattr(tensor, field.get(key, "int64_val")).extend(array.ravel().tolist())
        assert tf.make_ndarray(response.outputs[key]).tolist() == array.tolist()

    decoded = ours.PredictResponse.FromString(response.SerializeToString())
    for key, array in arrays.items():
        got = array_from_tensor(decoded.outputs[key])
        assert got.dtype.kind == array.dtype.kind and np.array_equal(got, array), key
