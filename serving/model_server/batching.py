"""Server-side batching of concurrent predict calls with TF Serving's BatchingParameters and limits.

It follows TensorFlow's SharedBatchScheduler (tensorflow/core/kernels/batching_util/
shared_batch_scheduler.h), which tensorflow_model_server's --enable_batching uses:
- a request of more rows than max_batch_size fails with INVALID_ARGUMENT "Task size N is larger than
  maximum input batch size M", unless enable_large_batch_splitting is on, and then too when it is larger
  than max_batch_size;
- with enable_large_batch_splitting, a request is cut into pieces that fill the open batch and then
  whole batches of max_execution_batch_size rows, and answered once every piece has run;
- a batch runs when it is full, or once its first request has waited batch_timeout_micros and a batch
  thread is free (while every thread is busy, batches keep filling);
- a full queue (max_enqueued_batches batches per model signature) fails with UNAVAILABLE.
A request is checked (signature, inputs, output filter: predict_util.cc) before it is queued, as TF Serving
checks it before its batching session sees it. Each signature is batched on its own, and so is each set of
outputs asked for: TF Serving's BatchingSession keeps one queue per set of input and output tensors
(batching_session.cc), with the same limits for every queue, so `explain` requests are never merged with
`serving_default` ones. Requests are batched with others of the same servable, signature, set of outputs
and input shapes (TF Serving would pad or fail to concatenate different shapes; this server does not pad).
"""

import threading
import time
from collections import deque
from concurrent.futures import Future

import grpc
import numpy as np

from serving.model_server.config import BatchingSettings
from serving.model_server.errors import ServingError, invalid_argument


class _Task:
    """One predict call; its rows may run in several pieces."""

    __slots__ = (
        "servable",
        "signature_name",
        "inputs",
        "output_filter",
        "signature_key",
        "outputs",
        "rows",
        "future",
        "parts",
        "left",
    )

    def __init__(
        self,
        servable,
        signature_name: str,
        inputs: dict,
        output_filter: tuple[str, ...],
        signature_key: str,
        outputs: tuple[str, ...],
        rows: int,
    ):
        self.servable = servable
        self.signature_name = signature_name
        self.inputs = inputs
        self.output_filter = output_filter
        self.signature_key = signature_key  # the signature's name, "" resolved to serving_default
        self.outputs = frozenset(outputs)  # what it fetches: an empty filter is every output
        self.rows = rows
        self.future: Future = Future()
        self.parts: list[dict | None] = []
        self.left = 0

    def key(self) -> tuple:
        shapes = tuple(
            (alias, array.dtype.str, array.shape[1:]) for alias, array in sorted(self.inputs.items())
        )
        return (id(self.servable), self.signature_key, self.outputs, shapes)


class _Piece:
    """Rows [start, stop) of a task, the `index`-th of its pieces."""

    __slots__ = ("task", "start", "stop", "index")

    def __init__(self, task: _Task, start: int, stop: int, index: int):
        self.task, self.start, self.stop, self.index = task, start, stop, index

    @property
    def rows(self) -> int:
        return self.stop - self.start


class _Batch:
    __slots__ = ("pieces", "size", "opened_at")

    def __init__(self):
        self.pieces: list[_Piece] = []
        self.size = 0
        self.opened_at = 0.0

    def add(self, piece: _Piece) -> None:
        if not self.pieces:
            self.opened_at = time.monotonic()
        self.pieces.append(piece)
        self.size += piece.rows


def batch_rows(inputs: dict) -> int:
    """The batch size of a request: the common 0th dimension of its inputs (TF Serving's batching_util)."""
    sizes = set()
    for array in inputs.values():
        if array.ndim == 0:
            raise invalid_argument("Batching Run() input tensors must have at least one dimension")
        sizes.add(array.shape[0])
    if len(sizes) > 1:
        raise invalid_argument("Batching Run() input tensors must have equal 0th-dimension size")
    return sizes.pop() if sizes else 0


class Batcher:
    """A queue of batches per batching key, served by num_batch_threads threads."""

    def __init__(self, settings: BatchingSettings):
        self._settings = settings
        self._splitting = settings.enable_large_batch_splitting
        # Without splitting a batch holds up to max_batch_size rows, as in SharedBatchScheduler.
        self._batch_limit = settings.max_execution_batch_size if self._splitting else settings.max_batch_size
        self._timeout_s = settings.batch_timeout_micros / 1e6
        self._cond = threading.Condition()
        self._queues: dict[tuple, deque[_Batch]] = {}  # the last batch of each queue is the open one
        self._stopping = False
        self._threads = [
            threading.Thread(target=self._work, name=f"batch-{i}", daemon=True)
            for i in range(settings.num_batch_threads)
        ]
        for thread in self._threads:
            thread.start()

    def run(self, servable, signature_name: str, inputs: dict, output_filter: tuple[str, ...] = ()) -> dict:
        """Predict through the batch queue; TF Serving's errors for oversized or unqueueable requests."""
        signature_key, outputs = servable.prepare(signature_name, inputs, output_filter)
        rows = batch_rows(inputs)
        if rows > self._settings.max_batch_size:
            raise invalid_argument(
                f"Task size {rows} is larger than maximum input batch size {self._settings.max_batch_size}"
            )
        if rows == 0 or self._stopping:
            return servable.predict(signature_name, inputs, output_filter)
        task = _Task(servable, signature_name, inputs, output_filter, signature_key, outputs, rows)
        with self._cond:
            self._schedule(task)
            self._cond.notify_all()
        return task.future.result()

    # ------------------------------------------------------------------ scheduling (under self._cond)

    def _schedule(self, task: _Task) -> None:
        batches = self._queues.get(task.key())
        if batches is None:
            batches = self._queues[task.key()] = deque([_Batch()])
        open_batch = batches[-1]
        limit, max_batches = self._batch_limit, self._settings.max_enqueued_batches
        if self._splitting:
            capacity = (max_batches - len(batches)) * limit + (limit - open_batch.size)
            if task.rows > capacity:
                raise ServingError(
                    grpc.StatusCode.UNAVAILABLE,
                    "The batch scheduling queue to which this task was submitted is full; task size is "
                    f"{task.rows} but scheduling capacity is only {capacity} (num_enqueued_batches="
                    f"{len(batches)}, max_enqueued_batches={max_batches}, open_batch_size={open_batch.size}, "
                    f"max_execution_batch_size={limit})",
                )
            sizes = _split(task.rows, limit - open_batch.size, limit)
        else:
            if open_batch.size + task.rows > limit and len(batches) >= max_batches:
                raise ServingError(
                    grpc.StatusCode.UNAVAILABLE,
                    "The batch scheduling queue to which this task was submitted is full; currently "
                    f"{len(batches)} batches enqueued and max_enqueued_batches is {max_batches}",
                )
            sizes = [task.rows]
        task.parts, task.left = [None] * len(sizes), len(sizes)
        start = 0
        for index, size in enumerate(sizes):
            if batches[-1].size + size > limit:
                batches.append(_Batch())  # closes the open batch
            batches[-1].add(_Piece(task, start, start + size, index))
            start += size

    def _next_batch(self) -> tuple[_Batch | None, float | None]:
        """A batch ready to run, or (None, seconds until one may be)."""
        now = time.monotonic()
        wait = None
        for key, batches in list(self._queues.items()):
            front = batches[0]
            ready = len(batches) > 1 or (
                front.pieces
                and (
                    self._stopping
                    or front.size >= self._batch_limit
                    or now >= front.opened_at + self._timeout_s
                )
            )
            if ready:
                batches.popleft()
                if not batches:
                    batches.append(_Batch())
                if not batches[0].pieces and len(batches) == 1:
                    del self._queues[key]  # client-chosen shapes must not leave queues behind
                return front, None
            if front.pieces:
                remaining = front.opened_at + self._timeout_s - now
                wait = remaining if wait is None else min(wait, remaining)
            else:
                del self._queues[key]
        return None, wait

    def _work(self) -> None:
        while True:
            with self._cond:
                while True:
                    batch, wait = self._next_batch()
                    if batch is not None:
                        break
                    if self._stopping and not self._queues:
                        return
                    self._cond.wait(wait)
            self._execute(batch)

    # ------------------------------------------------------------------ execution

    def _execute(self, batch: _Batch) -> None:
        first = batch.pieces[0].task
        try:
            if len(batch.pieces) == 1 and batch.pieces[0].rows == first.rows:
                outputs = first.servable.predict(first.signature_name, first.inputs, first.output_filter)
            else:
                merged = {
                    alias: np.concatenate([p.task.inputs[alias][p.start : p.stop] for p in batch.pieces])
                    for alias in first.inputs
                }
                outputs = first.servable.predict(first.signature_name, merged, first.output_filter)
        except Exception as exc:  # delivered to every request with a piece in this batch
            for piece in batch.pieces:
                if not piece.task.future.done():
                    piece.task.future.set_exception(exc)
            return
        offset = 0
        for piece in batch.pieces:
            part = {alias: array[offset : offset + piece.rows] for alias, array in outputs.items()}
            offset += piece.rows
            self._finish_piece(piece, part)

    def _finish_piece(self, piece: _Piece, part: dict) -> None:
        task = piece.task
        with self._cond:
            task.parts[piece.index] = part
            task.left -= 1
            done = task.left == 0
        if not done or task.future.done():
            return
        if len(task.parts) == 1:
            task.future.set_result(task.parts[0])
        else:
            task.future.set_result(
                {alias: np.concatenate([p[alias] for p in task.parts]) for alias in task.parts[0]}
            )

    def queued_rows(self) -> int:
        """Rows waiting in every queue (not yet running)."""
        with self._cond:
            return sum(batch.size for batches in self._queues.values() for batch in batches)

    def queue_count(self) -> int:
        """How many batching queues exist (one per key with requests waiting)."""
        with self._cond:
            return len(self._queues)

    def stop(self) -> None:
        """Run what is queued at once, then end the batch threads."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout=10)


def _split(rows: int, open_slot: int, limit: int) -> list[int]:
    """Piece sizes for `rows`: first what fits in the open batch, then batches of `limit` (SplitInputTask)."""
    sizes = []
    if open_slot > 0:
        sizes.append(min(rows, open_slot))
        rows -= sizes[0]
    while rows > 0:
        sizes.append(min(rows, limit))
        rows -= sizes[-1]
    return sizes
