"""serving_default and explain through a real model server process, as TF Serving serves them."""

import json
import time
import urllib.request

import grpc
import numpy as np
import pytest
from google.protobuf import json_format
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    prediction_service_pb2_grpc,
)

from contract import layout, mnist
from tests.support.model_server import (
    COMMITTED_MODEL_DIR,
    copy_model,
    official_predict_request,
    rest_call,
    start_model_server,
    write_model_config,
)
from tests.support.signature_models import (
    expected_outputs,
    linear_weights,
    newest_version_with,
    write_two_signature_model,
    write_warmup_records,
)

OLD_VERSION, TWO_SIGNATURES = 1, 2
# A black image ("not a digit" for the small model) and two bright random ones.
IMAGES = np.concatenate(
    [
        np.zeros((1, *mnist.INPUT_SHAPE), np.float32),
        np.random.default_rng(11).random((2, *mnist.INPUT_SHAPE), np.float32),
    ]
)
EXPECTED = expected_outputs(IMAGES, linear_weights())
DEFAULT, EXPLAIN = mnist.SIGNATURE_NAME, mnist.EXPLAIN_SIGNATURE_NAME


def saved_model_signature_defs(version_dir) -> dict:
    """The SignatureDefs of a version's saved_model.pb, which GetModelMetadata must return unchanged."""
    saved_model = saved_model_pb2.SavedModel.FromString((version_dir / layout.SAVED_MODEL_FILE).read_bytes())
    return dict(saved_model.meta_graphs[0].signature_def)


@pytest.fixture(scope="module")
def two_signature_dir(tmp_path_factory):
    version = write_two_signature_model(tmp_path_factory.mktemp("src") / "2", tflite=True)
    write_warmup_records(version, [(DEFAULT, 1), (EXPLAIN, 8)])
    return version


@pytest.fixture(scope="module")
def server(tmp_path_factory, two_signature_dir):
    """The shipped flags; version 1 is the committed baseline, version 2 has both signatures and a .tflite."""
    root = tmp_path_factory.mktemp("signatures")
    base = root / "models" / "mnist"
    copy_model(COMMITTED_MODEL_DIR / str(OLD_VERSION), base, OLD_VERSION)
    copy_model(two_signature_dir, base, TWO_SIGNATURES)
    config = write_model_config(root / "models.config", base, policy="all {}")
    running = start_model_server(root, model_config_file=config)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def stub(server):
    with grpc.insecure_channel(server.grpc_target) as channel:
        yield prediction_service_pb2_grpc.PredictionServiceStub(channel)


def grpc_predict(stub, signature: str, version: int = TWO_SIGNATURES, images=IMAGES, output_filter=()):
    request = official_predict_request(images, version=version)
    request.model_spec.signature_name = signature
    request.output_filter.extend(output_filter)
    return stub.Predict(request, timeout=30)


def grpc_metadata(stub, version: int):
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = mnist.MODEL_NAME
    request.model_spec.version.value = version
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    stub.GetModelMetadata(request, timeout=30).metadata["signature_def"].Unpack(signature_map)
    return signature_map


def assert_close(got, want) -> None:
    got = np.asarray(got)
    if want.dtype.kind == "f":
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    else:
        np.testing.assert_array_equal(got, want)


def rest_predict(server, body: dict, version: int = TWO_SIGNATURES) -> tuple[int, dict]:
    path = f"/v1/models/mnist/versions/{version}:predict"
    return rest_call(server, "POST", path, json.dumps(body).encode())


# ---------------------------------------------------------------- explain


def test_grpc_explain_returns_typed_attribution_and_digit(stub):
    response = grpc_predict(stub, EXPLAIN)
    assert response.model_spec.signature_name == EXPLAIN
    assert response.model_spec.version.value == TWO_SIGNATURES
    attribution, digit = response.outputs[mnist.ATTRIBUTION_KEY], response.outputs[mnist.DIGIT_KEY]
    assert attribution.dtype == types_pb2.DT_FLOAT and digit.dtype == types_pb2.DT_INT64
    assert [d.size for d in attribution.tensor_shape.dim] == [3, 28, 28]
    assert_close(np.reshape(attribution.float_val, (3, 28, 28)), EXPECTED[EXPLAIN][mnist.ATTRIBUTION_KEY])
    assert list(digit.int64_val) == EXPECTED[EXPLAIN][mnist.DIGIT_KEY].tolist()


@pytest.mark.parametrize("fmt", ["row", "columnar"])
def test_rest_explain_in_row_and_columnar_format(server, fmt):
    images = IMAGES.tolist()
    body = {"instances": images} if fmt == "row" else {"inputs": {mnist.INPUT_KEY: images}}
    status, reply = rest_predict(server, {"signature_name": EXPLAIN, **body})
    assert status == 200, reply
    if fmt == "row":
        outputs = {k: [row[k] for row in reply["predictions"]] for k in reply["predictions"][0]}
    else:
        outputs = reply["outputs"]
    assert set(outputs) == {mnist.ATTRIBUTION_KEY, mnist.DIGIT_KEY}
    for alias, want in EXPECTED[EXPLAIN].items():
        assert_close(outputs[alias], want)


def test_output_filter_picks_outputs_of_the_signature_asked_for(stub):
    response = grpc_predict(stub, EXPLAIN, output_filter=[mnist.DIGIT_KEY])
    assert set(response.outputs) == {mnist.DIGIT_KEY}
    with pytest.raises(grpc.RpcError) as info:
        grpc_predict(stub, EXPLAIN, output_filter=[mnist.IS_DIGIT_KEY])
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details() == (
        "output tensor alias not found in signature: is_digit Outputs expected to be in the set "
        "{attribution,digit}."
    )


# ---------------------------------------------------------------- serving_default's new outputs


def test_grpc_bool_output_is_bool_val(stub):
    response = grpc_predict(stub, "")
    is_digit = response.outputs[mnist.IS_DIGIT_KEY]
    assert is_digit.dtype == types_pb2.DT_BOOL
    assert list(is_digit.bool_val) == [False, True, True] == EXPECTED[DEFAULT][mnist.IS_DIGIT_KEY].tolist()
    assert response.model_spec.signature_name == DEFAULT
    for alias, want in EXPECTED[DEFAULT].items():
        values = json_format.MessageToDict(response.outputs[alias])
        assert alias in response.outputs and values["dtype"] != "DT_INVALID"
        if alias != mnist.IS_DIGIT_KEY:
            field = "floatVal" if want.dtype.kind == "f" else "int64Val"
            assert_close(np.asarray(values[field], dtype=want.dtype).reshape(want.shape), want)


def test_rest_bool_output_is_json_true_and_false(server):
    request = urllib.request.Request(
        f"{server.rest_url}/v1/models/mnist/versions/{TWO_SIGNATURES}:predict",
        data=json.dumps({"instances": IMAGES.tolist()}).encode(),
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        raw = response.read().decode()
    rows = json.loads(raw)["predictions"]
    assert [row[mnist.IS_DIGIT_KEY] for row in rows] == [False, True, True]
    assert all(type(row[mnist.IS_DIGIT_KEY]) is bool for row in rows)  # JSON true/false, not 0/1
    assert '"is_digit":false' in raw.replace(" ", "")
    assert_close([row[mnist.DIGIT_SCORE_KEY] for row in rows], EXPECTED[DEFAULT][mnist.DIGIT_SCORE_KEY])


# ---------------------------------------------------------------- metadata and errors


def test_grpc_metadata_lists_both_signature_defs_as_the_saved_model_holds_them(stub, two_signature_dir):
    signature_map = grpc_metadata(stub, TWO_SIGNATURES)
    # Every SignatureDef unchanged, __saved_model_init_op too: TF Serving copies the MetaGraphDef's map.
    assert dict(signature_map.signature_def) == saved_model_signature_defs(two_signature_dir)
    assert set(signature_map.signature_def) == {DEFAULT, EXPLAIN, "__saved_model_init_op"}


def test_rest_metadata_lists_both_signatures_with_tf_servings_encoding(server, stub):
    status, body = rest_call(server, "GET", f"/v1/models/mnist/versions/{TWO_SIGNATURES}/metadata")
    assert status == 200
    assert body["model_spec"]["version"] == str(TWO_SIGNATURES)
    signatures = body["metadata"]["signature_def"]["signature_def"]
    assert {DEFAULT, EXPLAIN} <= set(signatures)
    assert signatures[DEFAULT]["outputs"][mnist.IS_DIGIT_KEY]["dtype"] == "DT_BOOL"
    attribution = signatures[EXPLAIN]["outputs"][mnist.ATTRIBUTION_KEY]
    assert attribution["dtype"] == "DT_FLOAT"
    assert [d["size"] for d in attribution["tensor_shape"]["dim"]] == ["-1", "28", "28"]
    assert signatures[EXPLAIN]["method_name"] == "tensorflow/serving/predict"
    # The same SignatureDefMap gRPC returns, printed as TF Serving's REST API prints protos.
    grpc_map = json_format.MessageToDict(
        grpc_metadata(stub, TWO_SIGNATURES),
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True,
    )
    assert body["metadata"]["signature_def"] == grpc_map


def test_unknown_signature_is_tf_servings_error_in_both_transports(server, stub):
    with pytest.raises(grpc.RpcError) as info:
        grpc_predict(stub, "nope")
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert info.value.details() == 'Serving signature key "nope" not found.'
    status, body = rest_predict(server, {"signature_name": "nope", "instances": IMAGES.tolist()})
    assert (status, body) == (400, {"error": 'Serving signature name: "nope" not found in signature def'})


def test_the_init_op_signature_is_tf_servings_rest_error(server):
    status, body = rest_predict(server, {"signature_name": "__saved_model_init_op", "instances": [1.0]})
    assert (status, body) == (400, {"error": "Failed to get input map for signature: __saved_model_init_op"})


def test_an_explain_batch_obeys_the_shipped_batch_limits(server):
    images = np.random.default_rng(5).random((65, *mnist.INPUT_SHAPE), np.float32)
    status, body = rest_predict(server, {"signature_name": EXPLAIN, "instances": images.tolist()})
    assert (status, body) == (400, {"error": "Task size 65 is larger than maximum input batch size 64"})
    # 64 rows are split into execution batches and answered whole, in order.
    status, body = rest_predict(server, {"signature_name": EXPLAIN, "inputs": images[:64].tolist()})
    assert status == 200
    want = expected_outputs(images[:64], linear_weights())[EXPLAIN]
    for alias in want:
        assert_close(body["outputs"][alias], want[alias])


# ---------------------------------------------------------------- the version without explain


def test_old_version_serves_serving_default_without_a_judgement(stub):
    response = grpc_predict(stub, "", version=OLD_VERSION)
    assert set(response.outputs) == {mnist.PROBABILITIES_KEY, mnist.DIGIT_KEY}
    assert set(grpc_metadata(stub, OLD_VERSION).signature_def) == {DEFAULT, "__saved_model_init_op"}


def test_old_version_answers_explain_with_tf_servings_error(server, stub):
    with pytest.raises(grpc.RpcError) as info:
        grpc_predict(stub, EXPLAIN, version=OLD_VERSION)
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert info.value.details() == 'Serving signature key "explain" not found.'
    status, body = rest_predict(
        server, {"signature_name": EXPLAIN, "instances": IMAGES.tolist()}, OLD_VERSION
    )
    assert (status, body) == (400, {"error": 'Serving signature name: "explain" not found in signature def'})


# ---------------------------------------------------------------- --prefer_tflite_model


@pytest.fixture(scope="module")
def tflite_server(tmp_path_factory, two_signature_dir):
    """--prefer_tflite_model=true: version 1 warms up serving_default only, version 2 explain too."""
    root = tmp_path_factory.mktemp("tflite")
    base = root / "models" / "mnist"
    first = copy_model(two_signature_dir, base, 1)
    write_warmup_records(first, [(DEFAULT, 1)])
    copy_model(two_signature_dir, base, 2)
    config = write_model_config(root / "models.config", base, policy="all {}")
    running = start_model_server(root, model_config_file=config, extra_flags=["--prefer_tflite_model=true"])
    yield running
    running.stop()


def version_states(server) -> dict[int, tuple[str, str]]:
    with grpc.insecure_channel(server.grpc_target) as channel:
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = mnist.MODEL_NAME
        reply = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(request, timeout=30)
    return {
        s.version: (get_model_status_pb2.ModelVersionStatus.State.Name(s.state), s.status.error_message)
        for s in reply.model_version_status
    }


def test_under_prefer_tflite_only_the_tflite_files_signatures_are_served(tflite_server):
    # TF Serving's TfLiteSession replaces the SavedModel: model.tflite has no explain, nor has the server.
    status, body = rest_call(tflite_server, "GET", "/v1/models/mnist/versions/1/metadata")
    assert status == 200 and set(body["metadata"]["signature_def"]["signature_def"]) == {DEFAULT}
    with grpc.insecure_channel(tflite_server.grpc_target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            grpc_predict(stub, EXPLAIN, version=1)
        assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert info.value.details() == 'Serving signature key "explain" not found.'
        response = grpc_predict(stub, "", version=1)
    assert list(response.outputs[mnist.IS_DIGIT_KEY].bool_val) == [False, True, True]
    assert "Signature explain of" in tflite_server.process.log_tail()


def test_under_prefer_tflite_an_explain_warm_up_record_fails_the_load(tflite_server):
    deadline = time.monotonic() + 60
    while (states := version_states(tflite_server)).get(2, ("",))[0] not in ("END", "AVAILABLE"):
        assert time.monotonic() < deadline, states
        time.sleep(0.2)
    assert states[2] == ("END", 'Serving signature key "explain" not found.')
    assert states[1][0] == "AVAILABLE"


# ---------------------------------------------------------------- the real model


@pytest.fixture(scope="module")
def real_version():
    version = newest_version_with(EXPLAIN)
    if version is None:
        pytest.skip(f"no version under {COMMITTED_MODEL_DIR} has the {EXPLAIN} signature yet")
    return version


def test_the_newest_real_version_explains_its_digit_through_both_transports(tmp_path, real_version):
    base = tmp_path / "models" / "mnist"
    copy_model(real_version, base, int(real_version.name))
    running = start_model_server(tmp_path, model_base_path=base)
    try:
        images = IMAGES[1:]
        with grpc.insecure_channel(running.grpc_target) as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            default = grpc_predict(stub, "", version=int(real_version.name), images=images)
            explained = grpc_predict(stub, EXPLAIN, version=int(real_version.name), images=images)
        assert default.outputs[mnist.IS_DIGIT_KEY].dtype == types_pb2.DT_BOOL
        assert list(explained.outputs[mnist.DIGIT_KEY].int64_val) == list(
            default.outputs[mnist.DIGIT_KEY].int64_val
        )
        attribution = explained.outputs[mnist.ATTRIBUTION_KEY]
        assert [d.size for d in attribution.tensor_shape.dim] == [len(images), 28, 28]
        status, body = rest_predict(
            running, {"signature_name": EXPLAIN, "instances": images.tolist()}, int(real_version.name)
        )
        assert status == 200
        assert_close(
            [row[mnist.ATTRIBUTION_KEY] for row in body["predictions"]],
            np.reshape(attribution.float_val, (len(images), 28, 28)),
        )
    finally:
        running.stop()
