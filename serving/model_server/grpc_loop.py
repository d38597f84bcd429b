"""A gRPC server for unary methods whose threads all poll one completion queue and run handlers inline.

grpc.server() hands every call from the thread that polls the completion queue to a pool thread, which
then waits for the poller to deliver the request message, and the reply's completion goes back through
the poller: several thread hand-offs per call. Here, like the C++ synchronous server, every serving
thread polls the same queue and runs the handler for whatever event it gets, so a call is received,
handled and answered by one thread. A trivial echo between two processes took 0.3-0.6 ms instead of
0.7-2.0 ms (the same client; gRPC's EventEngine switched off on both sides, see
serving/model_server/__main__.py).

It uses grpcio's Cython layer (`grpc._cython.cygrpc`), the same calls grpc.server() makes, with grpcio
pinned in serving/requirements.txt. Handlers come from the official generated
`add_*Servicer_to_server` functions. Only unary-unary methods are served: every TF Serving RPC is one.
"""

import logging
import threading
import time
from collections.abc import Iterable, Sequence

import grpc
from grpc._cython import cygrpc

log = logging.getLogger(__name__)

_NO_FLAGS = 0
_NEW_CALL = "new-call"
_REPLY = "reply"  # a call's final batch: nothing is left to do when it completes
_SHUTDOWN = "shutdown"


class _Abort(Exception):
    """Raised by ServicerContext.abort to end the handler; the status is on the context."""


class ServicerContext:
    """The part of grpc.ServicerContext that handlers use: status, deadline and metadata."""

    def __init__(self, call, deadline: float, metadata):
        self._call = call
        self._deadline = deadline
        self._metadata = metadata
        self.code: grpc.StatusCode | None = None
        self.details: str | None = None

    def abort(self, code: grpc.StatusCode, details: str):
        """End the call with `code` and `details`, like grpc.ServicerContext.abort."""
        if code == grpc.StatusCode.OK:
            code = grpc.StatusCode.UNKNOWN  # grpc.server() does the same: abort never means success
        self.code, self.details = code, details
        raise _Abort()

    def abort_with_status(self, status):
        """End the call with a grpc.Status."""
        self.abort(status.code, status.details)

    def set_code(self, code: grpc.StatusCode):
        """The status to send when the handler returns or raises."""
        self.code = code

    def set_details(self, details: str):
        """The status message to send when the handler returns or raises."""
        self.details = details

    def invocation_metadata(self):
        """The client's request metadata."""
        return self._metadata

    def time_remaining(self) -> float:
        """Seconds left before the client's deadline (centuries without one, as grpc.server() says)."""
        return max(self._deadline - time.time(), 0.0)

    def peer(self) -> str:
        """The client's address."""
        return self._call.peer().decode()

    def is_active(self) -> bool:
        """Always True: calls are not watched for cancellation while their handler runs."""
        return True


class _HandlerCallDetails(grpc.HandlerCallDetails):
    def __init__(self, method: str, invocation_metadata):
        self.method = method
        self.invocation_metadata = invocation_metadata


class _Call:
    """One accepted call, waiting for its request message."""

    def __init__(self, event, handler: grpc.RpcMethodHandler):
        self.event = event
        self.handler = handler


class LoopServer:
    """Serves unary-unary handlers on `threads` threads that poll one completion queue."""

    def __init__(self, threads: int, options: Sequence[tuple[str, object]] = ()):
        if threads < 1:
            raise ValueError("a gRPC server needs at least one thread")
        self._threads = threads
        self._queue = cygrpc.CompletionQueue()
        self._server = cygrpc.Server(tuple(options), False)
        self._server.register_completion_queue(self._queue)
        self._generic_handlers: list[grpc.GenericRpcHandler] = []
        self._handlers: dict[bytes, grpc.RpcMethodHandler] = {}
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._stopping = False
        self._shut_down = False  # the core has finished every call (cancelled ones included)
        self._handlers_running = 0

    def add_generic_rpc_handlers(self, handlers: Iterable[grpc.GenericRpcHandler]) -> None:
        """Register handlers, as the generated add_*Servicer_to_server functions do."""
        self._generic_handlers.extend(handlers)

    def add_registered_method_handlers(self, service: str, handlers: dict) -> None:
        """Register handlers by method name (newer generated code calls this too)."""
        for method, handler in handlers.items():
            self._handlers[f"/{service}/{method}".encode()] = handler

    def add_insecure_port(self, address: str) -> int:
        """Bind `address`; the bound port, or 0 when it could not be bound."""
        return self._server.add_http2_port(address.encode())

    def start(self) -> None:
        """Accept calls on every thread."""
        self._server.start()
        for index in range(self._threads):
            self._server.request_call(self._queue, self._queue, _NEW_CALL)
            threading.Thread(target=self._serve, name=f"grpc-{index}", daemon=True).start()

    def stop(self, grace: float | None) -> threading.Event:
        """Stop accepting calls, let calls in flight finish for `grace` seconds, then cancel them."""
        with self._lock:
            if not self._stopping:
                self._stopping = True
                self._server.shutdown(self._queue, _SHUTDOWN)
                if grace:
                    threading.Thread(target=self._cancel_after, args=(grace,), daemon=True).start()
                else:
                    self._server.cancel_all_calls()
        return self._stopped

    def _cancel_after(self, grace: float) -> None:
        if not self._stopped.wait(grace):
            self._server.cancel_all_calls()

    def _serve(self) -> None:
        while True:
            event = self._queue.poll()
            if event.completion_type == cygrpc.CompletionType.queue_shutdown:
                return
            tag = event.tag
            try:
                if tag is _NEW_CALL:
                    self._accept(event)
                elif isinstance(tag, _Call):
                    with self._lock:
                        self._handlers_running += 1
                    try:
                        self._answer(tag, event)
                    finally:
                        with self._lock:
                            self._handlers_running -= 1
                            self._close_if_idle()
                elif tag is _SHUTDOWN:
                    with self._lock:
                        self._shut_down = True
                        self._close_if_idle()
            except Exception:  # a serving thread must never die: log and keep polling
                log.exception("gRPC serving thread error")

    def _close_if_idle(self) -> None:
        """With the lock held: once the core is done and no handler runs, release the server and queue."""
        # A cancelled call still has its handler running: the queue must outlive that handler's reply.
        if not self._shut_down or self._handlers_running or self._stopped.is_set():
            return
        self._server.destroy()
        self._queue.shutdown()
        self._stopped.set()

    def _accept(self, event) -> None:
        if not event.success:  # the server is shutting down
            return
        with self._lock:
            if not self._stopping:
                self._server.request_call(self._queue, self._queue, _NEW_CALL)
        handler = self._handler_for(event)
        if handler is None:
            _send_status(event.call, grpc.StatusCode.UNIMPLEMENTED, "Method not found!")
            return
        event.call.start_server_batch((cygrpc.ReceiveMessageOperation(_NO_FLAGS),), _Call(event, handler))

    def _handler_for(self, event) -> grpc.RpcMethodHandler | None:
        method = event.call_details.method
        handler = self._handlers.get(method)
        if handler is not None:
            return handler
        details = _HandlerCallDetails(method.decode(errors="replace"), event.invocation_metadata)
        handler = next(
            (h for h in (g.service(details) for g in self._generic_handlers) if h is not None), None
        )
        if handler is None or handler.request_streaming or handler.response_streaming:
            return None  # not remembered: clients choose method names, the cache must not grow with them
        self._handlers[method] = handler
        return handler

    def _answer(self, call: _Call, event) -> None:
        try:
            body = _respond(call, event)
        except _Status as status:
            _send_status(call.event.call, status.code, status.details)
            return
        call.event.call.start_server_batch(
            (
                cygrpc.SendInitialMetadataOperation(None, _NO_FLAGS),
                cygrpc.SendMessageOperation(body, _NO_FLAGS),
                cygrpc.SendStatusFromServerOperation(None, cygrpc.StatusCode.ok, b"", _NO_FLAGS),
                cygrpc.ReceiveCloseOnServerOperation(_NO_FLAGS),
            ),
            _REPLY,
        )


class _Status(Exception):
    """A call's end other than a reply: a status code and its details."""

    def __init__(self, code: grpc.StatusCode, details: str):
        super().__init__(details)
        self.code = code
        self.details = details


def _respond(call: _Call, event) -> bytes:
    """The serialized reply to `call`'s request message; raises _Status for anything else."""
    rpc, handler = call.event, call.handler
    message = event.batch_operations[0].message() if event.success else None
    if message is None:
        method = rpc.call_details.method.decode(errors="replace")
        raise _Status(grpc.StatusCode.UNIMPLEMENTED, f'"{method}" requires exactly one request message.')
    request = _convert(handler.request_deserializer, message, "Exception deserializing request!")
    context = ServicerContext(rpc.call, rpc.call_details.deadline, rpc.invocation_metadata)
    try:
        response = handler.unary_unary(request, context)
    except _Abort:
        raise _Status(context.code, context.details or "") from None
    except Exception as exc:
        if context.code is None:
            log.exception("Exception calling application")
        details = context.details if context.details is not None else f"Exception calling application: {exc}"
        raise _Status(context.code or grpc.StatusCode.UNKNOWN, details) from None
    if context.code not in (None, grpc.StatusCode.OK):
        raise _Status(context.code, context.details or "")
    return _convert(handler.response_serializer, response, "Failed to serialize response!")


def _convert(transform, value, failure: str):
    """`transform(value)` ((de)serialization), or INTERNAL with grpc.server()'s message when it fails."""
    if transform is None:
        return value
    try:
        return transform(value)
    except Exception:
        log.exception(failure)
        raise _Status(grpc.StatusCode.INTERNAL, failure) from None


def _send_status(call, code: grpc.StatusCode, details: str) -> None:
    """End `call` with a status and no message."""
    call.start_server_batch(
        (
            cygrpc.SendInitialMetadataOperation(None, _NO_FLAGS),
            cygrpc.SendStatusFromServerOperation(None, code.value[0], details.encode(), _NO_FLAGS),
            cygrpc.ReceiveCloseOnServerOperation(_NO_FLAGS),
        ),
        _REPLY,
    )
