"""Micro-batching: concurrent requests share one ONNX Runtime call.

Requests queue their decoded rows together with the model they were decoded for. One
collector task closes a batch when it holds ``max_batch`` rows or when the oldest request
has waited ``max_wait_ms``, whichever comes first, and runs it on a single worker thread so
the event loop never blocks on inference. It also closes early when no other request is
between admission and the queue: waiting for requests that are not in the server only adds
latency, so a lone request is sent at once. Under load the worker is busy, the queue fills
meanwhile and batches grow by themselves.

A batch never mixes models: after a hot swap, requests decoded for the old model still run
on the old session, and every answer names the version that produced it. A request larger
than ``max_batch`` runs alone, in ``max_batch`` slices on the same session.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from flywheel.release.predictor import Prediction
from flywheel.serving.model_holder import LoadedModel
from flywheel.serving.telemetry import ServingMetrics


@dataclass(frozen=True)
class BatchResult:
    predictions: list[Prediction]
    version: str
    batch_size: int
    queue_seconds: float
    ort_seconds: float


@dataclass
class _Pending:
    model: LoadedModel
    rows: np.ndarray
    enqueued: float
    future: asyncio.Future[BatchResult] = field(repr=False)


class MicroBatcher:
    def __init__(self, max_batch: int, max_wait_ms: float, metrics: ServingMetrics) -> None:
        self.max_batch = max_batch
        self.max_wait_s = max_wait_ms / 1000.0
        self.metrics = metrics
        self._queue: deque[_Pending] = deque()
        self._queued_rows = 0
        self._changed = asyncio.Event()
        self._admitted = 0
        self._worker: ThreadPoolExecutor | None = None
        self._task: asyncio.Task[None] | None = None

    # request side
    @contextlib.asynccontextmanager
    async def admission(self) -> AsyncIterator[None]:
        """Held by a request from arrival until its rows are queued (or it fails), so the
        collector knows whether waiting could bring more rows."""
        self._admitted += 1
        try:
            yield
        finally:
            self._admitted -= 1
            self._changed.set()

    def enqueue(self, model: LoadedModel, rows: np.ndarray) -> asyncio.Future[BatchResult]:
        """Queue rows decoded for ``model``; call inside :meth:`admission`, await outside it."""
        if self._task is None:
            raise RuntimeError("batcher is not running")
        loop = asyncio.get_running_loop()
        pending = _Pending(model, rows, loop.time(), loop.create_future())
        self._queue.append(pending)
        self._queued_rows += len(rows)
        self._changed.set()
        return pending.future

    @property
    def backlog_rows(self) -> int:
        """Rows queued and not yet handed to the model."""
        return self._queued_rows

    # collector side
    def start(self) -> None:
        # One thread: ONNX Runtime parallelises inside a call; a second caller would only
        # contend for the same cores and break up batches.
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="flywheel-ort")
        self._task = asyncio.get_running_loop().create_task(self._run(), name="flywheel-batcher")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        while self._queue:
            pending = self._queue.popleft()
            if not pending.future.done():
                pending.future.set_exception(RuntimeError("server is shutting down"))
        self._queued_rows = 0
        if self._worker is not None:
            self._worker.shutdown(wait=True, cancel_futures=True)
            self._worker = None

    async def _wait_for_change(self, timeout: float | None) -> None:
        self._changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)

    @staticmethod
    def _joins(first: _Pending, item: _Pending) -> bool:
        # Same session, and rows that stack (a text family's sequence length may vary).
        return item.model is first.model and item.rows.shape[1:] == first.rows.shape[1:]

    def _leading_run(self) -> tuple[int, bool]:
        """Rows the next batch would take now, and whether it can grow no further."""
        first = self._queue[0]
        rows = 0
        for item in self._queue:
            if not self._joins(first, item) or (rows and rows + len(item.rows) > self.max_batch):
                return rows, True
            rows += len(item.rows)
        return rows, rows >= self.max_batch

    def _take_batch(self) -> list[_Pending]:
        first = self._queue.popleft()
        batch, rows = [first], len(first.rows)
        while self._queue:
            item = self._queue[0]
            if not self._joins(first, item) or rows + len(item.rows) > self.max_batch:
                break
            batch.append(self._queue.popleft())
            rows += len(item.rows)
        self._queued_rows -= rows
        return batch

    async def _collect(self) -> list[_Pending]:
        loop = asyncio.get_running_loop()
        while not self._queue:
            await self._wait_for_change(None)
        deadline = self._queue[0].enqueued + self.max_wait_s
        while True:
            _, closed = self._leading_run()
            remaining = deadline - loop.time()
            if closed or self._admitted == 0 or remaining <= 0:
                return self._take_batch()
            await self._wait_for_change(remaining)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        worker = self._worker
        if worker is None:
            raise RuntimeError("batcher started without a worker")
        while True:
            batch = await self._collect()
            batch = [p for p in batch if not p.future.done()]  # clients that gave up
            if not batch:
                continue
            dispatched = loop.time()
            model = batch[0].model
            try:
                rows = np.concatenate([p.rows for p in batch]) if len(batch) > 1 else batch[0].rows
                predictions, ort_seconds = await loop.run_in_executor(
                    worker, self._infer, model, rows
                )
            except Exception as err:  # fail this batch's requests, keep serving the next
                for p in batch:
                    if not p.future.done():
                        p.future.set_exception(err)
                continue
            start = 0
            for p in batch:
                end = start + len(p.rows)
                if not p.future.done():
                    p.future.set_result(
                        BatchResult(
                            predictions=predictions[start:end],
                            version=model.version,
                            batch_size=len(rows),
                            queue_seconds=dispatched - p.enqueued,
                            ort_seconds=ort_seconds,
                        )
                    )
                start = end

    def _infer(self, model: LoadedModel, rows: np.ndarray) -> tuple[list[Prediction], float]:
        predictions: list[Prediction] = []
        ort_seconds = 0.0
        for i in range(0, len(rows), self.max_batch):
            chunk = rows[i : i + self.max_batch]
            chunk_predictions, chunk_ort = model.predict(chunk)
            self.metrics.batch_size.observe(len(chunk))
            self.metrics.inference.observe(chunk_ort)
            predictions += chunk_predictions
            ort_seconds += chunk_ort
        return predictions, ort_seconds
