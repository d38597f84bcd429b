"""The operations both APIs expose (predict, metadata, status, config reload), on top of the manager."""

import time

from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_management_pb2,
    predict_pb2,
)

from serving.model_server import tensors
from serving.model_server.config import validate_model_server_config
from serving.model_server.errors import ServingError, invalid_argument
from serving.model_server.manager import ModelManager
from serving.model_server.metrics import Metrics
from serving.model_server.servable import DEFAULT_SIGNATURE

SIGNATURE_DEF_FIELD = "signature_def"
SIGNATURE_DEF_MAP_TYPE_URL = "type.googleapis.com/tensorflow.serving.SignatureDefMap"


def spec_choice(model_spec) -> tuple[int | None, str | None]:
    """(version, label) from a ModelSpec's version_choice oneof."""
    choice = model_spec.WhichOneof("version_choice")
    if choice == "version":
        return model_spec.version.value, None
    if choice == "version_label":
        return None, model_spec.version_label
    return None, None


class ServingCore:
    """Predict / GetModelMetadata / GetModelStatus / HandleReloadConfigRequest over a ModelManager."""

    def __init__(self, manager: ModelManager, metrics: Metrics | None = None, batcher=None):
        self.manager = manager
        self.metrics = metrics
        self.batcher = batcher

    # ------------------------------------------------------------------ predict

    def run(self, servable, signature_name: str, inputs: dict, output_filter: tuple[str, ...] = ()) -> dict:
        """Run one predict call on a resolved servable, through the batcher when batching is on."""
        if self.batcher is not None:
            return self.batcher.run(servable, signature_name, inputs, output_filter)
        return servable.predict(signature_name, inputs, output_filter)

    def predict(self, request: predict_pb2.PredictRequest) -> predict_pb2.PredictResponse:
        """PredictionService.Predict with outputs as typed value fields (AsProtoField), like TF Serving."""
        if not request.HasField("model_spec"):
            raise invalid_argument("Missing ModelSpec")
        spec = request.model_spec
        version, label = spec_choice(spec)
        servable = self.manager.resolve(spec.name, version, label)
        inputs = {alias: tensors.proto_to_array(proto, alias) for alias, proto in request.inputs.items()}
        outputs = self.run(servable, spec.signature_name, inputs, tuple(request.output_filter))
        response = predict_pb2.PredictResponse()
        response.model_spec.name = spec.name
        response.model_spec.signature_name = spec.signature_name or DEFAULT_SIGNATURE
        response.model_spec.version.value = servable.version
        for alias, array in outputs.items():
            tensors.array_to_proto(array, response.outputs[alias])
        return response

    def predict_json(self, name: str, version: int | None, label: str | None, body: bytes) -> str:
        """REST :predict, in the order HttpRestApiHandler::ProcessPredictRequest checks things."""
        doc = tensors.parse_json_body(body)
        signature_name = tensors.signature_name_of(doc)
        servable = self.manager.resolve(name, version, label)
        # numpy's conversion would accept JSON booleans as numbers; only use it when there are none.
        fast = b"true" not in body and b"false" not in body
        input_dtypes = servable.input_dtypes(signature_name)
        inputs, fmt = tensors.request_arrays_from_json(doc, input_dtypes, fast, signature_name)
        outputs = self.run(servable, signature_name, inputs)
        return tensors.outputs_to_json(outputs, fmt)

    # ------------------------------------------------------------------ metadata and status

    def metadata(self, request: get_model_metadata_pb2.GetModelMetadataRequest):
        """GetModelMetadata: model_spec with the RESOLVED version and a packed SignatureDefMap."""
        if not request.HasField("model_spec"):
            raise invalid_argument("Missing ModelSpec")
        if not request.metadata_field:
            raise invalid_argument("GetModelMetadataRequest must specify at least one metadata_field")
        for field in request.metadata_field:
            if field != SIGNATURE_DEF_FIELD:
                raise invalid_argument(f"Metadata field {field} is not supported")
        version, label = spec_choice(request.model_spec)
        servable = self.manager.resolve(request.model_spec.name, version, label)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = servable.name
        response.model_spec.version.value = servable.version
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for sig_name, definition in servable.signature_defs.items():
            signature_map.signature_def[sig_name].CopyFrom(definition)
        response.metadata[SIGNATURE_DEF_FIELD].Pack(signature_map)
        return response

    def status(self, request: get_model_status_pb2.GetModelStatusRequest):
        """GetModelStatus (get_model_status_impl.cc): one version, or all versions newest first."""
        if not request.HasField("model_spec"):
            raise invalid_argument("Missing ModelSpec")
        spec = request.model_spec
        version = spec.version.value if spec.HasField("version") else None
        response = get_model_status_pb2.GetModelStatusResponse()
        for record in self.manager.version_status(spec.name, version):
            entry = response.model_version_status.add()
            entry.version = record.version
            entry.state = get_model_status_pb2.ModelVersionStatus.State.Value(record.state)
            entry.status.SetInParent()  # ToStatusProto(OK) is still printed: {"error_code": "OK", ...}
            if record.error is not None:
                entry.status.error_code = record.error.code.value[0]
                entry.status.error_message = record.error.message
        return response

    # ------------------------------------------------------------------ config

    def reload_config(self, request: model_management_pb2.ReloadConfigRequest):
        """HandleReloadConfigRequest; a failure fails the RPC with TF Serving's code and message."""
        if request.config.WhichOneof("config") != "model_config_list":
            raise invalid_argument(
                "ServerModelConfig type not supported by HandleReloadConfigRequest. "
                "Only ModelConfigList is currently supported"
            )
        validate_model_server_config(request.config)
        self.manager.reload_config(request.config)
        return model_management_pb2.ReloadConfigResponse()  # status unset: OK

    def record(self, model_name: str, api: str, entrypoint: str, started: float, error: ServingError | None):
        """Count a request in the Prometheus metrics."""
        if self.metrics is not None:
            status = "OK" if error is None else error.code.name
            self.metrics.observe_request(
                model_name or "", api, entrypoint, status, time.perf_counter() - started
            )
