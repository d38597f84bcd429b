"""TF Serving client over gRPC: one round_robin channel per process for calls, created on first use (after
fork), and one channel per model server for per-server status."""

import json
import os
import threading

import grpc
import numpy as np

from contract.mnist import EXPLAIN_SIGNATURE_NAME, INPUT_KEY, SIGNATURE_NAME
from contract.targets import TargetError, backend_addresses
from gateway.client.base import (
    BackendStatus,
    Explanation,
    ModelVersionStatus,
    Prediction,
    ServingClient,
    with_retries,
)
from gateway.client.outputs import (
    EXPLAIN_OUTPUTS,
    PREDICT_OUTPUTS,
    explanation_from_outputs,
    prediction_from_outputs,
)
from gateway.client.status import upstream_error
from gateway.config import GatewayConfig
from gateway.deadline import Deadline
from gateway.errors import UpstreamError
from gateway.proto import tf_serving_subset_pb2 as pb
from gateway.proto.stubs import ModelServiceStub, PredictionServiceStub

# Reconnect quickly after a model server restart: gRPC's default backoff grows to minutes; 250 ms
# keeps a restarted server within reach of one request's retries (50+100+200 ms).
CHANNEL_OPTIONS = (
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 250),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.enable_retries", 0),  # retries are ours: UNAVAILABLE only, bounded
    ("grpc.keepalive_time_ms", 30_000),
)
# gRPC's own round_robin over every address of the target (a list, or all a dns: name resolves to): a
# call goes to the next server whose connection is READY, so a server that is down (connection refused
# or reset) takes no calls until it reconnects. Not grpc.health.v1 health checking: TF Serving does not
# implement that service. With one address it behaves as pick_first.
ROUND_ROBIN = json.dumps({"loadBalancingConfig": [{"round_robin": {}}]})
SHARED_CHANNEL_OPTIONS = (*CHANNEL_OPTIONS, ("grpc.service_config", ROUND_ROBIN))
_STATE_NAMES = {value: name for name, value in pb.ModelVersionStatus.State.items()}
# DataType -> (little-endian dtype of tensor_content, typed value field, dtype the gateway reads it as).
_DECODERS = {
    pb.DT_FLOAT: ("<f4", "float_val", np.float32),
    pb.DT_DOUBLE: ("<f8", "double_val", np.float32),
    pb.DT_INT32: ("<i4", "int_val", np.int64),
    pb.DT_INT64: ("<i8", "int64_val", np.int64),
    pb.DT_BOOL: ("?", "bool_val", np.bool_),
}


def tensor_from_array(array: np.ndarray) -> pb.TensorProto:
    """A DT_FLOAT TensorProto carrying `array` as little-endian tensor_content."""
    tensor = pb.TensorProto(dtype=pb.DT_FLOAT, tensor_content=np.ascontiguousarray(array, "<f4").tobytes())
    tensor.tensor_shape.dim.extend(pb.TensorShapeProto.Dim(size=size) for size in array.shape)
    return tensor


def array_from_tensor(tensor: pb.TensorProto) -> np.ndarray:
    """A numpy array from a TensorProto (tensor_content or typed values): float32, int64 or bool."""
    decoder = _DECODERS.get(tensor.dtype)
    if decoder is None:
        raise UpstreamError(f"model returned an output of unsupported dtype {tensor.dtype}")
    wire_dtype, field, kind = decoder
    shape = tuple(dim.size for dim in tensor.tensor_shape.dim)
    if tensor.tensor_content:
        values = np.frombuffer(tensor.tensor_content, wire_dtype)
    else:
        values = np.asarray(getattr(tensor, field), wire_dtype)
    expected = int(np.prod(shape)) if shape else 1
    if values.size == 1 and expected > 1:  # TF Serving may send one value for a constant tensor
        values = np.full(expected, values[0])
    if values.size != expected:
        raise UpstreamError(f"model returned {values.size} values for shape {list(shape)}")
    return values.reshape(shape).astype(kind)


def outputs_from_response(response: pb.PredictResponse, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The reply's outputs among `keys` (those present) as arrays."""
    return {key: array_from_tensor(response.outputs[key]) for key in keys if key in response.outputs}


class GrpcServingClient(ServingClient):
    """PredictionService/ModelService calls within the request's deadline, retrying UNAVAILABLE."""

    transport = "grpc"
    reply_names_version = True

    def __init__(self, config: GatewayConfig):
        self._config = config
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._channel: grpc.Channel | None = None
        self._prediction: PredictionServiceStub | None = None
        self._models: ModelServiceStub | None = None
        self._backends: dict[str, tuple[grpc.Channel, ModelServiceStub]] = {}

    def _stubs(self) -> tuple[PredictionServiceStub, ModelServiceStub]:
        """The stubs of this process's channel; a forked child opens its own."""
        with self._lock:
            if self._channel is None or self._pid != os.getpid():
                target = self._config.grpc_target
                self._channel = grpc.insecure_channel(target, options=SHARED_CHANNEL_OPTIONS)
                self._backends = {}  # a forked child opens its own
                self._pid = os.getpid()
                self._prediction = PredictionServiceStub(self._channel)
                self._models = ModelServiceStub(self._channel)
            return self._prediction, self._models

    def _call(self, method_name: str, request, what: str, deadline: Deadline | None):
        """Invoke one unary method within `deadline`, retrying UNAVAILABLE with backoff."""
        deadline = deadline or Deadline.after(self._config.upstream_timeout_s)

        def attempt():
            prediction, models = self._stubs()
            method = getattr(models if method_name == "GetModelStatus" else prediction, method_name)
            try:
                return method(request, timeout=deadline.left_for(what))
            except grpc.RpcError as error:
                raise upstream_error(error.code().name, error.details() or "", what) from error

        return with_retries(
            attempt,
            retries=self._config.upstream_retries,
            backoff_s=self._config.upstream_backoff_s,
            deadline=deadline,
        )

    def _spec(self, **choice) -> pb.ModelSpec:
        spec = pb.ModelSpec(name=self._config.model_name, **choice)
        return spec

    def predict(
        self,
        images: np.ndarray,
        *,
        version: int | None = None,
        label: str | None = None,
        deadline: Deadline | None = None,
    ) -> Prediction:
        """Predict with a version, a version_label or neither (TF Serving's latest AVAILABLE version); the
        reply's model_spec.version is the one reported.

        TF Serving resolves the label or the latest itself, so neither costs a metadata or status call.
        """
        if version is not None and label is not None:
            raise ValueError("predict takes a version or a label, not both")
        # No output_filter: naming an output a version lacks is an error in TF Serving, and versions
        # differ (the judgement outputs are newer than version 1); every version's outputs are small.
        request = pb.PredictRequest()
        request.model_spec.CopyFrom(self._spec(signature_name=SIGNATURE_NAME))
        if version is not None:
            request.model_spec.version.value = version
        elif label is not None:
            request.model_spec.version_label = label
        request.inputs[INPUT_KEY].CopyFrom(tensor_from_array(images))
        response = self._call("Predict", request, "predict", deadline)
        if response.model_spec.HasField("version"):
            served = response.model_spec.version.value
        elif version is not None:
            served = version
        else:
            asked = f"label {label!r}" if label is not None else "the latest version"
            raise UpstreamError(f"the predict reply for {asked} does not say which version served it")
        outputs = outputs_from_response(response, PREDICT_OUTPUTS)
        return prediction_from_outputs(outputs, len(images), int(served))

    def explain(self, images: np.ndarray, *, version: int, deadline: Deadline | None = None) -> Explanation:
        """Predict on the explain signature of exactly `version` (a number, so no label can move under it)."""
        request = pb.PredictRequest()
        request.model_spec.CopyFrom(self._spec(signature_name=EXPLAIN_SIGNATURE_NAME))
        request.model_spec.version.value = version
        request.inputs[INPUT_KEY].CopyFrom(tensor_from_array(images))
        response = self._call("Predict", request, "explain", deadline)
        if response.model_spec.HasField("version") and response.model_spec.version.value != version:
            raise UpstreamError(
                f"asked version {version} to explain, version {response.model_spec.version.value} answered"
            )
        outputs = outputs_from_response(response, EXPLAIN_OUTPUTS)
        return explanation_from_outputs(outputs, len(images), version)

    def version_for_label(self, label: str, deadline: Deadline | None = None) -> int:
        """Resolve a version label with GetModelMetadata (TF Serving has no label listing)."""
        request = pb.GetModelMetadataRequest(metadata_field=["signature_def"])
        request.model_spec.CopyFrom(self._spec(version_label=label))
        response = self._call("GetModelMetadata", request, "metadata", deadline)
        if not response.model_spec.HasField("version"):
            raise UpstreamError(f"metadata for label {label!r} carries no version")
        return int(response.model_spec.version.value)

    def model_status(self, deadline: Deadline | None = None) -> list[ModelVersionStatus]:
        """GetModelStatus for every version of the model."""
        request = pb.GetModelStatusRequest()
        request.model_spec.CopyFrom(self._spec())
        return _statuses(self._call("GetModelStatus", request, "status", deadline))

    @property
    def backend_name(self) -> str:
        """The channel target (one server, or the list as gRPC sees it)."""
        return self._config.grpc_target

    def _backend_stubs(self, addresses: tuple[str, ...]) -> list[tuple[str, ModelServiceStub]]:
        """A ModelService stub per server address, on channels of their own kept across calls."""
        self._stubs()  # the per-process reset after fork
        with self._lock:
            for gone in set(self._backends) - set(addresses):  # a dns: name no longer resolves there
                self._backends.pop(gone)[0].close()
            for address in addresses:
                if address not in self._backends:
                    channel = grpc.insecure_channel(address, options=CHANNEL_OPTIONS)
                    self._backends[address] = (channel, ModelServiceStub(channel))
            return [(address, self._backends[address][1]) for address in addresses]

    def backend_statuses(
        self, deadline: Deadline | None = None, known: list[ModelVersionStatus] | None = None
    ) -> list[BackendStatus]:
        """GetModelStatus on every model server of the target at once, one attempt each, within `deadline`.

        `known` is not used: the shared channel's answer came from whichever server round_robin picked.
        """
        deadline = deadline or Deadline.after(self._config.upstream_timeout_s)
        try:
            addresses = backend_addresses(self._config.grpc_target)
        except (OSError, TargetError) as exc:
            return [BackendStatus(self._config.grpc_target, None, f"cannot resolve the target: {exc}")]
        request = pb.GetModelStatusRequest()
        request.model_spec.CopyFrom(self._spec())
        timeout = deadline.left_for("status")
        calls = [
            (address, stub.GetModelStatus.future(request, timeout=timeout))
            for address, stub in self._backend_stubs(addresses)
        ]
        rows = []
        for address, call in calls:
            try:
                response = call.result()
            except grpc.RpcError as error:
                failure = upstream_error(error.code().name, error.details() or "", "status")
                rows.append(BackendStatus(address, None, failure.message))
                continue
            rows.append(BackendStatus(address, _statuses(response)))
        return rows

    def close(self) -> None:
        """Close this process's channels."""
        with self._lock:
            if self._pid == os.getpid():
                if self._channel is not None:
                    self._channel.close()
                for channel, _ in self._backends.values():
                    channel.close()
            self._channel = None
            self._backends = {}


def _statuses(response: pb.GetModelStatusResponse) -> list[ModelVersionStatus]:
    return [
        ModelVersionStatus(version=int(item.version), state=_STATE_NAMES.get(item.state, "UNKNOWN"))
        for item in response.model_version_status
    ]
