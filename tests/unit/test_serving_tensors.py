"""JSON and TensorProto conversions follow TF Serving's json_tensor.cc formats and error messages."""

import json

import numpy as np
import pytest
from tensorflow.core.framework import tensor_pb2, types_pb2

from serving.model_server import tensors
from serving.model_server.errors import ServingError

FLOAT_IMAGE = {"image": types_pb2.DT_FLOAT}


@pytest.mark.parametrize("fast", [False, True])
def test_row_format_batches_instances(fast):
    doc = {"instances": [[[0.0, 1.0]], [[0.5, 0.25]]]}
    arrays, fmt = tensors.request_arrays_from_json(doc, FLOAT_IMAGE, fast)
    assert fmt == "row"
    assert arrays["image"].dtype == np.float32
    np.testing.assert_array_equal(arrays["image"], [[[0.0, 1.0]], [[0.5, 0.25]]])


def test_row_format_accepts_named_objects():
    arrays, _ = tensors.request_arrays_from_json({"instances": [{"image": [1, 2]}]}, FLOAT_IMAGE)
    np.testing.assert_array_equal(arrays["image"], [[1.0, 2.0]])


@pytest.mark.parametrize("fast", [False, True])
def test_columnar_format_takes_whole_tensor(fast):
    doc = {"inputs": {"image": [[1, 2], [3, 4]]}}
    arrays, fmt = tensors.request_arrays_from_json(doc, FLOAT_IMAGE, fast)
    assert fmt == "columnar"
    assert arrays["image"].shape == (2, 2) and arrays["image"].dtype == np.float32


def test_b64_strings_decode_to_bytes():
    arrays, _ = tensors.request_arrays_from_json(
        {"instances": [{"b64": "aGVsbG8="}]}, {"s": types_pb2.DT_STRING}
    )
    assert arrays["s"].tolist() == [b"hello"]


BAD_JSON = [
    ({"instances": [["a"]]}, 'JSON Value: "a" Type: String is not of expected type: float'),
    ({"instances": [[1, 2], [3]]}, "Expecting tensor size: 2 but got: 1"),
    ({"instances": [[1, [2]]]}, "Encountered list at unexpected level: 1 expected < 1"),
    (
        {"instances": [[[1], 2]]},
        "JSON Value: 2 found at incorrect level: 2 in the JSON DOM. Expected at level: 2",
    ),
    ({"instances": []}, "No values in 'instances' array"),
    ({"instances": 3}, "Excepting 'instances' to be an list/array"),
    ({"instances": [1], "inputs": [1]}, "expecting only one of 'inputs' or 'instances' keys to exist"),
    ({"image": [1]}, "Missing 'inputs' or 'instances' key"),
    ({"inputs": {"other": [1]}}, "Missing named input: image in 'inputs' object."),
    ({"inputs": [[1, 2], [3]]}, "Encountered list at unexpected size: 1 at level: 1 expected size: 2"),
    ({"instances": [[16777217]]}, "Cannot convert JSON value: 16777217 to float without loss of precision."),
    ({"inputs": [[1e39]]}, "Cannot convert JSON value: 1e+39 to float without loss of precision."),
]
# The service only takes the numpy shortcut for bodies without JSON booleans, so these run slow-path only.
BAD_JSON_WITH_BOOLEANS = [
    ({"instances": [[True]]}, "JSON Value: true Type: True is not of expected type: float"),
]


@pytest.mark.parametrize(
    ("doc", "message", "fast"),
    [(*case, fast) for case in BAD_JSON for fast in (False, True)]
    + [(*case, False) for case in BAD_JSON_WITH_BOOLEANS],
)
def test_bad_json_tensors_are_invalid_argument(doc, message, fast):
    with pytest.raises(ServingError) as info:
        tensors.request_arrays_from_json(doc, FLOAT_IMAGE, fast)
    assert info.value.http_status == 400
    assert message in info.value.message


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "JSON Parse error: The document is empty"),
        (b"{not json", "JSON Parse error:"),
        (b"[1, 2]", "Is not object"),
    ],
)
def test_unparseable_bodies_are_invalid_argument(body, message):
    with pytest.raises(ServingError) as info:
        tensors.parse_json_body(body)
    assert info.value.http_status == 400 and message in info.value.message


def test_signature_name_must_be_a_string():
    with pytest.raises(ServingError, match="'signature_name' key must be a string value."):
        tensors.signature_name_of({"signature_name": 100})


def test_outputs_to_json_row_and_columnar():
    outputs = {
        "digit": np.array([7, 1], dtype=np.int64),
        "probabilities": np.array([[0.25, 0.75], [1.0, 0.0]], dtype=np.float32),
    }
    row = json.loads(tensors.outputs_to_json(outputs, "row"))
    assert row == {
        "predictions": [
            {"digit": 7, "probabilities": [0.25, 0.75]},
            {"digit": 1, "probabilities": [1.0, 0.0]},
        ]
    }
    columnar = json.loads(tensors.outputs_to_json(outputs, "columnar"))
    assert columnar == {"outputs": {"digit": [7, 1], "probabilities": [[0.25, 0.75], [1.0, 0.0]]}}


def test_single_output_is_not_wrapped_in_an_object():
    outputs = {"y": np.array([[0.5]], dtype=np.float32)}
    assert json.loads(tensors.outputs_to_json(outputs, "row")) == {"predictions": [[0.5]]}
    assert json.loads(tensors.outputs_to_json(outputs, "columnar")) == {"outputs": [[0.5]]}


def test_float_output_uses_shortest_round_trip_text():
    text = tensors.outputs_to_json({"y": np.array([0.1, 3.0], dtype=np.float32)}, "columnar")
    assert text == '{"outputs":[0.1,3.0]}'


@pytest.mark.parametrize(
    "array",
    [
        np.arange(6, dtype=np.float32).reshape(2, 3),
        np.array([3, -4], dtype=np.int64),
        np.array([[1, 2]], dtype=np.int32),
        np.array([b"a", b"bc"], dtype=object),
    ],
)
def test_proto_round_trip_uses_typed_fields(array):
    proto = tensor_pb2.TensorProto()
    tensors.array_to_proto(array, proto)
    assert not proto.tensor_content
    back = tensors.proto_to_array(proto, "x")
    assert back.shape == array.shape and back.tolist() == array.tolist()


def test_tensor_content_is_decoded():
    array = np.random.default_rng(0).random((1, 28, 28, 1), dtype=np.float32)
    proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_content=array.tobytes())
    for size in array.shape:
        proto.tensor_shape.dim.add().size = size
    np.testing.assert_array_equal(tensors.proto_to_array(proto, "image"), array)


def test_wrong_value_count_is_a_parsing_error():
    proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, float_val=[1, 2, 3])
    proto.tensor_shape.dim.add().size = 2
    with pytest.raises(ServingError, match="tensor parsing error: image"):
        tensors.proto_to_array(proto, "image")


@pytest.mark.parametrize(
    ("signature", "named"), [("", "DEFAULT"), ("__saved_model_init_op", "__saved_model_init_op")]
)
def test_a_signature_without_inputs_is_named_in_the_error_like_json_tensor_cc(signature, named):
    with pytest.raises(ServingError) as info:
        tensors.request_arrays_from_json({"instances": [1.0]}, {}, signature_name=signature)
    assert info.value.message == f"Failed to get input map for signature: {named}"
