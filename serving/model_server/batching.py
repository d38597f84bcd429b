"""Server-side batching of concurrent predict calls, configured by TF Serving's BatchingParameters."""

import queue
import threading
import time
from concurrent.futures import Future

import grpc
import numpy as np

from serving.model_server.config import BatchingSettings
from serving.model_server.errors import ServingError


class _Task:
    __slots__ = ("servable", "signature_name", "inputs", "output_filter", "rows", "future")

    def __init__(self, servable, signature_name, inputs, output_filter):
        self.servable = servable
        self.signature_name = signature_name
        self.inputs = inputs
        self.output_filter = output_filter
        first = next(iter(inputs.values()), None)
        self.rows = first.shape[0] if first is not None and first.ndim > 0 else 0
        self.future: Future = Future()

    def key(self):
        shapes = tuple(
            (alias, array.dtype.str, array.shape[1:]) for alias, array in sorted(self.inputs.items())
        )
        return (id(self.servable), self.signature_name, self.output_filter, shapes)


class Batcher:
    """Merge requests that arrive within batch_timeout_micros into one call of up to max_batch_size rows."""

    def __init__(self, settings: BatchingSettings):
        self._settings = settings
        self._queue: queue.Queue = queue.Queue(
            maxsize=max(1, settings.max_enqueued_batches * settings.max_batch_size)
        )
        self._stopping = False
        self._threads = [
            threading.Thread(target=self._work, name=f"batch-{i}", daemon=True)
            for i in range(settings.num_batch_threads)
        ]
        for thread in self._threads:
            thread.start()

    def run(self, servable, signature_name: str, inputs: dict, output_filter: tuple[str, ...] = ()) -> dict:
        """Predict through the batch queue; tasks that cannot be batched run directly."""
        task = _Task(servable, signature_name, inputs, output_filter)
        if task.rows == 0 or task.rows >= self._settings.max_batch_size or self._stopping:
            return servable.predict(signature_name, inputs, output_filter)
        try:
            self._queue.put_nowait(task)
        except queue.Full:
            raise ServingError(
                grpc.StatusCode.UNAVAILABLE,
                "The batch scheduling queue to which this task was submitted is full",
            ) from None
        return task.future.result()

    def _work(self) -> None:
        timeout_s = self._settings.batch_timeout_micros / 1e6
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch, rows = [first], first.rows
            deadline = time.monotonic() + timeout_s
            leftover = None
            while rows < self._settings.max_batch_size:
                remaining = deadline - time.monotonic()
                try:
                    task = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if task is None:
                    self._queue.put(None)
                    break
                if task.key() != first.key() or rows + task.rows > self._settings.max_batch_size:
                    leftover = task
                    break
                batch.append(task)
                rows += task.rows
            self._execute(batch)
            if leftover is not None:
                self._execute([leftover])

    def _execute(self, batch: list[_Task]) -> None:
        first = batch[0]
        try:
            if len(batch) == 1:
                first.future.set_result(
                    first.servable.predict(first.signature_name, first.inputs, first.output_filter)
                )
                return
            merged = {alias: np.concatenate([t.inputs[alias] for t in batch]) for alias in first.inputs}
            outputs = first.servable.predict(first.signature_name, merged, first.output_filter)
        except Exception as exc:  # delivered to every waiting request
            for task in batch:
                if not task.future.done():
                    task.future.set_exception(exc)
            return
        start = 0
        for task in batch:
            task.future.set_result(
                {alias: array[start : start + task.rows] for alias, array in outputs.items()}
            )
            start += task.rows

    def stop(self) -> None:
        """Let queued tasks finish, then end the worker threads."""
        self._stopping = True
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout=10)
