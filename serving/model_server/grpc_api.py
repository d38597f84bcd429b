"""gRPC PredictionService and ModelService from the official tensorflow-serving-api stubs."""

import logging
import time
from concurrent import futures

import grpc
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

from serving.model_server.errors import ServingError
from serving.model_server.service import ServingCore

log = logging.getLogger(__name__)
MAX_MESSAGE_BYTES = 2**31 - 1  # tensorflow_model_server accepts messages up to INT_MAX


def _abort(context: grpc.ServicerContext, error: ServingError):
    context.abort(error.code, error.message)


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    """Predict and GetModelMetadata; Classify, Regress and MultiInference answer UNIMPLEMENTED."""

    def __init__(self, core: ServingCore):
        self._core = core

    def Predict(self, request, context):  # noqa: N802 - gRPC method name
        started = time.perf_counter()
        try:
            response = self._core.predict(request)
        except ServingError as exc:
            self._core.record(request.model_spec.name, "predict", "GRPC", started, exc)
            _abort(context, exc)
        self._core.record(request.model_spec.name, "predict", "GRPC", started, None)
        return response

    def GetModelMetadata(self, request, context):  # noqa: N802 - gRPC method name
        try:
            return self._core.metadata(request)
        except ServingError as exc:
            _abort(context, exc)


class ModelServicer(model_service_pb2_grpc.ModelServiceServicer):
    """GetModelStatus and HandleReloadConfigRequest."""

    def __init__(self, core: ServingCore):
        self._core = core

    def GetModelStatus(self, request, context):  # noqa: N802 - gRPC method name
        try:
            return self._core.status(request)
        except ServingError as exc:
            _abort(context, exc)

    def HandleReloadConfigRequest(self, request, context):  # noqa: N802 - gRPC method name
        try:
            return self._core.reload_config(request)
        except ServingError as exc:
            log.error("ReloadConfig failed: %s", exc.message)
            _abort(context, exc)


def create_grpc_server(
    core: ServingCore, host: str, port: int, max_threads: int, socket_path: str = ""
) -> grpc.Server:
    """A started gRPC server on `host`:`port` (unless 0) and `unix:<socket_path>` (if set).

    Like tensorflow_model_server's --grpc_max_threads, at most `max_threads` calls run at once; more wait.
    """
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_threads, thread_name_prefix="grpc"),
        options=[
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", 0),
        ],
    )
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionServicer(core), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelServicer(core), server)
    if port != 0:
        _listen(server, f"{host}:{port}")
    if socket_path:
        _listen(server, f"unix:{socket_path}")
    server.start()
    return server


def _listen(server: grpc.Server, address: str) -> None:
    # grpcio raises RuntimeError on some bind failures and returns 0 on others; make both one error.
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError as exc:
        raise OSError(f"Failed to listen on {address}: {exc}") from None
    if bound == 0:
        raise OSError(f"Failed to listen on {address}")
