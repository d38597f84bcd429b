"""LoopServer: statuses, errors, concurrency and shutdown, as grpc.server() would give them."""

import os
import re
import subprocess
import sys
import threading
import time

import grpc
import pytest
from tensorflow_serving.apis import classification_pb2, prediction_service_pb2_grpc

from serving.model_server.grpc_loop import LoopServer
from tests.support.processes import REPO_ROOT

SERVICE = "test.Echo"


def _echo(request: bytes, context) -> bytes:
    return request


def _abort(request: bytes, context) -> bytes:
    context.abort(grpc.StatusCode.NOT_FOUND, "no such thing: " + request.decode())


def _crash(request: bytes, context) -> bytes:
    raise RuntimeError("boom")


def _deadline(request: bytes, context) -> bytes:
    return str(round(context.time_remaining())).encode()


class _Gate:
    """A handler that blocks until released, counting the calls inside it."""

    def __init__(self):
        self.inside = 0
        self.release = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, request: bytes, context) -> bytes:
        with self._lock:
            self.inside += 1
        self.release.wait(10)
        return request


def _start(threads: int = 4, **handlers) -> tuple[LoopServer, grpc.Channel]:
    server = LoopServer(threads)
    methods = {name: grpc.unary_unary_rpc_method_handler(h) for name, h in handlers.items()}
    methods["Stream"] = grpc.unary_stream_rpc_method_handler(lambda request, context: iter([request]))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, methods),))
    port = server.add_insecure_port("127.0.0.1:0")
    assert port > 0
    server.start()
    return server, grpc.insecure_channel(f"127.0.0.1:{port}")


@pytest.fixture
def served():
    started = []

    def start(threads: int = 4, **handlers):
        server, channel = _start(threads, **handlers)
        started.append((server, channel))
        return server, channel

    yield start
    for server, channel in started:
        channel.close()
        server.stop(None).wait(10)


def _call(channel: grpc.Channel, method: str, body: bytes = b"x", timeout: float = 10.0) -> bytes:
    return channel.unary_unary(f"/{SERVICE}/{method}")(body, timeout=timeout)


def _error(channel: grpc.Channel, method: str, body: bytes = b"x") -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        _call(channel, method, body)
    return caught.value


def test_unary_call_gets_its_reply(served):
    _, channel = served(Echo=_echo)
    assert _call(channel, "Echo", b"hello") == b"hello"
    assert _call(channel, "Echo", b"x" * 3_000_000) == b"x" * 3_000_000


def test_abort_sends_its_code_and_details(served):
    _, channel = served(Abort=_abort)
    error = _error(channel, "Abort", b"seven")
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert error.details() == "no such thing: seven"


def test_handler_exception_is_unknown_and_the_server_keeps_serving(served):
    _, channel = served(Crash=_crash, Echo=_echo)
    error = _error(channel, "Crash")
    assert error.code() == grpc.StatusCode.UNKNOWN
    assert error.details() == "Exception calling application: boom"
    assert _call(channel, "Echo", b"still here") == b"still here"


def test_unknown_method_is_unimplemented(served):
    _, channel = served(Echo=_echo)
    error = _error(channel, "Missing")
    assert error.code() == grpc.StatusCode.UNIMPLEMENTED
    assert error.details() == "Method not found!"


def test_streaming_method_is_unimplemented(served):
    _, channel = served(Echo=_echo)
    with pytest.raises(grpc.RpcError) as caught:
        list(channel.unary_stream(f"/{SERVICE}/Stream")(b"x", timeout=10))
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_handler_sees_the_client_deadline(served):
    _, channel = served(Deadline=_deadline)
    assert _call(channel, "Deadline", timeout=30) in (b"29", b"30")
    assert int(channel.unary_unary(f"/{SERVICE}/Deadline")(b"x")) > 100 * 365 * 86400


@pytest.fixture
def prediction_channel():
    """A channel to a LoopServer running the generated servicer, whose methods all say UNIMPLEMENTED."""
    server = LoopServer(2)
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        prediction_service_pb2_grpc.PredictionServiceServicer(), server
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield channel
    server.stop(None).wait(10)


def test_servicer_default_method_answers_unimplemented(prediction_channel):
    stub = prediction_service_pb2_grpc.PredictionServiceStub(prediction_channel)
    with pytest.raises(grpc.RpcError) as caught:
        stub.Classify(classification_pb2.ClassificationRequest(), timeout=10)
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert caught.value.details() == "Method not implemented!"


def test_undecodable_request_is_internal_and_the_server_keeps_serving(prediction_channel):
    raw = prediction_channel.unary_unary("/tensorflow.serving.PredictionService/Classify")
    with pytest.raises(grpc.RpcError) as caught:
        raw(b"\xff\xff\xff", timeout=10)
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    with pytest.raises(grpc.RpcError) as again:
        raw(b"", timeout=10)
    assert again.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_calls_run_at_once_on_separate_threads(served):
    gate = _Gate()
    _, channel = served(threads=3, Gate=gate)
    replies = []
    callers = [
        threading.Thread(target=lambda i=i: replies.append(_call(channel, "Gate", bytes([i]))))
        for i in range(3)
    ]
    for caller in callers:
        caller.start()
    deadline = time.monotonic() + 10
    while gate.inside < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert gate.inside == 3  # all three handlers are blocked inside at the same time
    gate.release.set()
    for caller in callers:
        caller.join(10)
    assert sorted(replies) == [b"\x00", b"\x01", b"\x02"]


def test_stop_lets_a_call_in_flight_finish_and_refuses_new_ones():
    gate = _Gate()
    server, channel = _start(2, Gate=gate, Echo=_echo)
    reply = []
    caller = threading.Thread(target=lambda: reply.append(_call(channel, "Gate", b"in flight")))
    caller.start()
    while gate.inside < 1:
        time.sleep(0.01)
    stopped = server.stop(grace=10)
    assert not stopped.is_set()
    error = _error(channel, "Echo")
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    gate.release.set()
    caller.join(10)
    assert reply == [b"in flight"]
    assert stopped.wait(10)
    channel.close()


def test_stop_cancels_calls_still_running_after_the_grace_period():
    gate = _Gate()
    server, channel = _start(2, Gate=gate)
    errors = []

    def call():
        try:
            _call(channel, "Gate")
        except grpc.RpcError as exc:
            errors.append((exc.code(), exc.details()))

    caller = threading.Thread(target=call)
    caller.start()
    while gate.inside < 1:
        time.sleep(0.01)
    started = time.monotonic()
    stopped = server.stop(grace=0.2)
    caller.join(10)
    assert errors == [(grpc.StatusCode.UNAVAILABLE, "Cancelling all calls")]  # what grpc.server() says
    assert time.monotonic() - started < 5
    gate.release.set()
    assert stopped.wait(10)
    channel.close()


@pytest.mark.parametrize("entry_point", ["serving/model_server/__main__.py", "gateway/gunicorn.conf.py"])
def test_pinned_grpc_knows_the_experiments_we_switch_off(entry_point):
    source = (REPO_ROOT / entry_point).read_text()
    setting = re.search(r'setdefault\("GRPC_EXPERIMENTS", "([^"]+)"\)', source).group(1)
    imported = subprocess.run(
        [sys.executable, "-c", "import grpc"],
        env={**os.environ, "GRPC_EXPERIMENTS": setting},
        capture_output=True,
        text=True,
        check=True,
    )
    assert "Unknown experiment" not in imported.stderr
    assert setting == "-event_engine_client,-event_engine_listener"
