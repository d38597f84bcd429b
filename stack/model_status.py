"""What the model server itself says: version states (GetModelStatus) and where a label resolves.

The lifecycle asks the model server, not the gateway: only the server knows whether a version loaded,
failed (END with its error) or is still LOADING, and whether a label move in the config took effect.
"""

import os
from dataclasses import dataclass
from pathlib import Path

import grpc

from contract import mnist
from contract.targets import TargetError, backend_addresses, channel_target
from stack.services import recorded_model_servers

DEFAULT_HOST = "127.0.0.1"
DEFAULT_GRPC_PORT = "8500"
CALL_TIMEOUT_S = 5.0
SIGNATURE_DEF_FIELD = "signature_def"  # the only metadata field GetModelMetadata serves
CODE_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}  # StatusProto.error_code -> name


class ModelServerUnavailable(RuntimeError):
    """The model server did not answer (down, wrong address, or too slow)."""


@dataclass(frozen=True)
class VersionState:
    """One row of GetModelStatus: state name (LOADING, AVAILABLE, END, ...) and its status."""

    version: int
    state: str
    error_code: str
    error_message: str

    @property
    def failed(self) -> bool:
        """True when the version ended with an error (a failed load)."""
        return self.state == "END" and self.error_code != "OK"


def model_server_address(env=os.environ) -> str:
    """The model servers' gRPC target (contract/targets.py), from the first of these that is set:

    TF_SERVING_GRPC_TARGET (as the gateway reads it: one address, a list, dns:///name:port); the servers
    the local stack's `up` recorded in RUN_DIR (stack/services.py), so `make promote` after
    `make up MODEL_SERVERS=N` asks all N; TF_SERVING_HOST and TF_SERVING_GRPC_PORT.
    """
    target = env.get("TF_SERVING_GRPC_TARGET", "").strip()
    if target:
        return target
    recorded = recorded_model_servers(Path(env.get("RUN_DIR", "run")))
    if recorded:
        return ",".join(server["grpc"] for server in recorded)
    host = env.get("TF_SERVING_HOST", DEFAULT_HOST) or DEFAULT_HOST
    port = env.get("TF_SERVING_GRPC_PORT", DEFAULT_GRPC_PORT) or DEFAULT_GRPC_PORT
    return f"{host}:{port}"


class ModelServers:
    """The model servers behind one gRPC target, each asked on its own (a client per address, kept)."""

    def __init__(self, target: str, model_name: str = mnist.MODEL_NAME):
        self.target = target
        self.model_name = model_name
        self._clients: dict[str, ModelServerClient] = {}

    def clients(self) -> list["ModelServerClient"]:
        """A client for each server the target names now (a dns: name is resolved again each time)."""
        try:
            channel_target(self.target)
            addresses = backend_addresses(self.target)
        except TargetError as exc:
            raise ModelServerUnavailable(f"bad model server target: {exc}") from None
        except OSError as exc:
            raise ModelServerUnavailable(f"cannot resolve the model servers {self.target!r}: {exc}") from None
        if not addresses:
            raise ModelServerUnavailable(f"{self.target!r} names no model server")
        for address in addresses:
            if address not in self._clients:
                self._clients[address] = ModelServerClient(address, self.model_name)
        return [self._clients[address] for address in addresses]


class ModelServerClient:
    """GetModelStatus and label resolution over gRPC, with the official tensorflow_serving.apis protos."""

    def __init__(self, address: str, model_name: str = mnist.MODEL_NAME):
        self.address = address
        self.model_name = model_name
        self._channel = None

    def _stubs(self):
        # Imported late: the official protos pull in TensorFlow, which only the lifecycle commands need.
        from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

        if self._channel is None:
            self._channel = grpc.insecure_channel(self.address)
        return (
            model_service_pb2_grpc.ModelServiceStub(self._channel),
            prediction_service_pb2_grpc.PredictionServiceStub(self._channel),
        )

    def close(self) -> None:
        """Close the channel (a new one is opened on the next call)."""
        if self._channel is not None:
            self._channel.close()
            self._channel = None

    def versions(self) -> dict[int, VersionState]:
        """Every version the server knows of the model; {} when it knows none yet (NOT_FOUND)."""
        from tensorflow_serving.apis import get_model_status_pb2

        model_service, _ = self._stubs()
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = self.model_name
        try:
            reply = model_service.GetModelStatus(request, timeout=CALL_TIMEOUT_S)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return {}
            raise self._unavailable("GetModelStatus", exc) from None
        state_name = get_model_status_pb2.ModelVersionStatus.State.Name
        return {
            row.version: VersionState(
                row.version,
                state_name(row.state),
                CODE_NAMES.get(row.status.error_code, "UNKNOWN"),
                row.status.error_message,
            )
            for row in reply.model_version_status
        }

    def label_version(self, label: str) -> int | None:
        """The version `label` resolves to on the server (GetModelMetadata by label); None when unknown."""
        from tensorflow_serving.apis import get_model_metadata_pb2

        _, prediction_service = self._stubs()
        request = get_model_metadata_pb2.GetModelMetadataRequest()
        request.model_spec.name = self.model_name
        request.model_spec.version_label = label
        request.metadata_field.append(SIGNATURE_DEF_FIELD)
        try:
            reply = prediction_service.GetModelMetadata(request, timeout=CALL_TIMEOUT_S)
        except grpc.RpcError as exc:
            # TF Serving: INVALID_ARGUMENT "Unrecognized servable version label", NOT_FOUND when the
            # labelled version is not loaded; both mean the label does not serve anything now.
            if exc.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND):
                return None
            raise self._unavailable("GetModelMetadata", exc) from None
        return reply.model_spec.version.value

    def _unavailable(self, method: str, exc: grpc.RpcError) -> ModelServerUnavailable:
        return ModelServerUnavailable(
            f"the model server at {self.address} did not answer {method}: {exc.code().name} {exc.details()}"
        )
