"""Batcher: TF Serving's batch limits, large-batch splitting and queue bounds, with a fake servable."""

import threading

import grpc
import numpy as np
import pytest

from serving.model_server.batching import Batcher
from serving.model_server.config import BatchingSettings
from serving.model_server.errors import ServingError


class FakeServable:
    """Doubles its input and records the batch size of every call; `gate` holds calls until it is set.

    Its signatures all have the outputs `y` and `z`; `signature_calls` records (signature, rows) per call.
    """

    OUTPUTS = ("y", "z")

    def __init__(self, gate: threading.Event | None = None):
        self.calls: list[int] = []
        self.signature_calls: list[tuple[str, int]] = []
        self.gate = gate
        self.entered = threading.Semaphore(0)
        self._lock = threading.Lock()

    def prepare(self, signature_name, inputs, output_filter=()):
        return signature_name or "serving_default", tuple(output_filter) or self.OUTPUTS

    def predict(self, signature_name, inputs, output_filter=()):
        with self._lock:
            self.calls.append(len(inputs["x"]))
            self.signature_calls.append((signature_name or "serving_default", len(inputs["x"])))
        self.entered.release()
        if self.gate is not None:
            self.gate.wait()
        outputs = {"y": inputs["x"] * 2, "z": inputs["x"] * 3}
        return {name: outputs[name] for name in (output_filter or self.OUTPUTS)}


def rows(n: int, start: int = 0) -> dict:
    return {"x": np.arange(start, start + n, dtype=np.float32).reshape(n, 1)}


def settings(**overrides) -> BatchingSettings:
    base = {
        "max_batch_size": 16,
        "batch_timeout_micros": 0,
        "max_enqueued_batches": 4,
        "num_batch_threads": 1,
    }
    return BatchingSettings(**{**base, **overrides})


@pytest.fixture
def make_batcher():
    made = []

    def make(**overrides) -> Batcher:
        made.append(Batcher(settings(**overrides)))
        return made[-1]

    yield make
    for batcher in made:
        batcher.stop()


def in_threads(batcher, servable, requests, signatures=None, output_filters=None) -> list:
    results = [None] * len(requests)
    signatures = signatures or ["serving_default"] * len(requests)
    output_filters = output_filters or [()] * len(requests)

    def call(i):
        try:
            results[i] = batcher.run(servable, signatures[i], requests[i], output_filters[i])
        except ServingError as exc:
            results[i] = exc

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    return threads, results


@pytest.mark.parametrize("splitting", [False, True])
def test_request_over_max_batch_size_is_invalid_argument_like_tf_serving(make_batcher, splitting):
    batcher = make_batcher(enable_large_batch_splitting=splitting, max_execution_batch_size=8)
    servable = FakeServable()
    with pytest.raises(ServingError) as info:
        batcher.run(servable, "serving_default", rows(17))
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.message == "Task size 17 is larger than maximum input batch size 16"
    assert servable.calls == []


def test_request_of_max_batch_size_runs_in_one_call_without_splitting(make_batcher):
    servable = FakeServable()
    out = make_batcher().run(servable, "serving_default", rows(16))
    assert servable.calls == [16]
    np.testing.assert_array_equal(out["y"], rows(16)["x"] * 2)


def test_large_request_is_split_into_execution_batches_and_answered_whole(make_batcher):
    batcher = make_batcher(max_batch_size=64, enable_large_batch_splitting=True, max_execution_batch_size=16)
    servable = FakeServable()
    out = batcher.run(servable, "serving_default", rows(40))
    assert servable.calls == [16, 16, 8]
    np.testing.assert_array_equal(out["y"], rows(40)["x"] * 2)


def test_concurrent_requests_share_a_batch_while_the_thread_is_busy(make_batcher):
    gate = threading.Event()
    servable = FakeServable(gate)
    batcher = make_batcher(max_batch_size=64, enable_large_batch_splitting=True, max_execution_batch_size=16)
    first, first_result = in_threads(batcher, servable, [rows(1)])
    servable.entered.acquire()  # the only batch thread is now busy with the first request
    waiting = [rows(5, 100), rows(5, 200), rows(10, 300)]
    threads, results = in_threads(batcher, servable, waiting)
    while batcher.queued_rows() < 20:  # all three are queued behind the busy thread
        threading.Event().wait(0.005)
    gate.set()
    for thread in first + threads:
        thread.join()
    # 5 + 5 fill a batch with 6 of the 10, the other 4 run next: one request, two batches.
    assert servable.calls == [1, 16, 4]
    for request, result in zip(waiting, results, strict=True):
        np.testing.assert_array_equal(result["y"], request["x"] * 2)


def test_full_queue_is_unavailable_like_tf_serving(make_batcher):
    gate = threading.Event()
    servable = FakeServable(gate)
    batcher = make_batcher(max_enqueued_batches=1)
    busy, _ = in_threads(batcher, servable, [rows(16)])
    servable.entered.acquire()
    queued, _ = in_threads(batcher, servable, [rows(16)])
    while batcher.queued_rows() < 16:
        threading.Event().wait(0.005)
    with pytest.raises(ServingError) as info:
        batcher.run(servable, "serving_default", rows(1))
    gate.set()
    for thread in busy + queued:
        thread.join()
    assert info.value.code == grpc.StatusCode.UNAVAILABLE
    assert info.value.message == (
        "The batch scheduling queue to which this task was submitted is full; "
        "currently 1 batches enqueued and max_enqueued_batches is 1"
    )


def test_split_request_over_queue_capacity_is_unavailable(make_batcher):
    batcher = make_batcher(
        max_batch_size=64,
        enable_large_batch_splitting=True,
        max_execution_batch_size=8,
        max_enqueued_batches=2,
    )
    with pytest.raises(ServingError) as info:
        batcher.run(FakeServable(), "serving_default", rows(17))
    assert info.value.code == grpc.StatusCode.UNAVAILABLE
    assert info.value.message.startswith(
        "The batch scheduling queue to which this task was submitted is full; "
        "task size is 17 but scheduling capacity is only 16"
    )


def test_inputs_with_different_batch_sizes_are_refused(make_batcher):
    inputs = {"x": np.zeros((2, 1), np.float32), "z": np.zeros((3, 1), np.float32)}
    with pytest.raises(ServingError, match="must have equal 0th-dimension size"):
        make_batcher().run(FakeServable(), "serving_default", inputs)


def test_queues_of_client_chosen_shapes_do_not_stay_behind(make_batcher):
    batcher = make_batcher()
    servable = FakeServable()
    for width in range(1, 50):
        batcher.run(servable, "serving_default", {"x": np.zeros((1, width), np.float32)})
    assert batcher.queue_count() == 0


def test_a_failed_batch_fails_every_request_in_it(make_batcher):
    class Broken(FakeServable):
        def predict(self, signature_name, inputs, output_filter=()):
            raise ServingError(grpc.StatusCode.INTERNAL, "boom")

    with pytest.raises(ServingError, match="boom"):
        make_batcher(max_batch_size=64, enable_large_batch_splitting=True, max_execution_batch_size=8).run(
            Broken(), "serving_default", rows(20)
        )


def queue_behind_a_busy_thread(batcher, servable, requests, signatures=None, output_filters=None):
    """Occupy the only batch thread, queue `requests` behind it, release it; return their results."""
    first, _ = in_threads(batcher, servable, [rows(1)])
    servable.entered.acquire()
    threads, results = in_threads(batcher, servable, requests, signatures, output_filters)
    while batcher.queued_rows() < sum(len(r["x"]) for r in requests):
        threading.Event().wait(0.005)
    servable.gate.set()
    for thread in first + threads:
        thread.join()
    return results


def test_each_signature_is_batched_on_its_own_like_tf_servings_batching_session(make_batcher):
    servable = FakeServable(threading.Event())
    batcher = make_batcher(max_batch_size=64, enable_large_batch_splitting=True, max_execution_batch_size=16)
    requests = [rows(3, 10), rows(4, 20), rows(5, 30), rows(6, 40)]
    signatures = ["serving_default", "explain", "", "explain"]
    results = queue_behind_a_busy_thread(batcher, servable, requests, signatures)
    # "" is serving_default: it joins that queue; explain rows never share a model call with it.
    assert sorted(servable.signature_calls[1:]) == [("explain", 10), ("serving_default", 8)]
    for request, result in zip(requests, results, strict=True):
        np.testing.assert_array_equal(result["y"], request["x"] * 2)


def test_an_explain_request_obeys_the_same_batch_limits(make_batcher):
    batcher = make_batcher(max_batch_size=32, enable_large_batch_splitting=True, max_execution_batch_size=8)
    servable = FakeServable()
    with pytest.raises(ServingError, match="Task size 33 is larger than maximum input batch size 32"):
        batcher.run(servable, "explain", rows(33))
    out = batcher.run(servable, "explain", rows(20))
    assert servable.signature_calls == [("explain", 8), ("explain", 8), ("explain", 4)]
    np.testing.assert_array_equal(out["z"], rows(20)["x"] * 3)


def test_output_filters_naming_the_same_outputs_share_a_batch(make_batcher):
    # TF Serving keys its queues by the set of tensors fetched: no filter, or every output in any order.
    servable = FakeServable(threading.Event())
    batcher = make_batcher(max_batch_size=64, enable_large_batch_splitting=True, max_execution_batch_size=16)
    requests = [rows(2, 10), rows(3, 20), rows(4, 30), rows(5, 40)]
    filters = [(), ("z", "y"), ("y", "z"), ("y",)]
    results = queue_behind_a_busy_thread(batcher, servable, requests, output_filters=filters)
    assert sorted(servable.calls[1:]) == [5, 9]
    for request, result, wanted in zip(requests, results, filters, strict=True):
        assert set(result) == set(wanted or FakeServable.OUTPUTS)
        np.testing.assert_array_equal(result["y"], request["x"] * 2)


def test_a_request_is_checked_before_it_is_queued(make_batcher):
    class Checking(FakeServable):
        def prepare(self, signature_name, inputs, output_filter=()):
            raise ServingError(
                grpc.StatusCode.FAILED_PRECONDITION, f'Serving signature key "{signature_name}" not found.'
            )

    servable = Checking()
    with pytest.raises(ServingError) as info:
        make_batcher().run(
            servable, "nope", rows(17)
        )  # over max_batch_size 16 too: the signature comes first
    assert info.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert servable.calls == []
