"""What every route of one server shares: the model holder, the batcher, the metrics and
the feedback inbox, and the one path from a request body to predictions."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from flywheel.core.sections import ServeConfig
from flywheel.serving.batcher import BatchResult, MicroBatcher
from flywheel.serving.feedback import FeedbackStore
from flywheel.serving.model_holder import LoadedModel, ModelHolder
from flywheel.serving.requests import RequestRejectedError, decode_instances, parse_json
from flywheel.serving.telemetry import ServingMetrics

# Bodies above this are parsed and decoded on a worker thread; smaller ones are cheaper
# to handle inline than to hand over.
INLINE_BYTES = 64 * 1024


@dataclass(frozen=True)
class ServerState:
    serve: ServeConfig
    holder: ModelHolder
    batcher: MicroBatcher
    metrics: ServingMetrics
    feedback: FeedbackStore

    def serving_model(self) -> LoadedModel:
        model = self.holder.current
        if model is None:
            reason = self.holder.last_refusal or "no production model is loaded yet"
            raise RequestRejectedError(503, "not_ready", reason)
        return model

    def refuse_when_overloaded(self) -> None:
        backlog = self.batcher.backlog_rows
        if backlog >= self.serve.max_queued_rows:
            # Refused before the body is read or decoded: an overloaded server spends
            # nothing more on work it cannot start soon.
            raise RequestRejectedError(
                503,
                "overloaded",
                f"server busy: {backlog} rows already wait for the model "
                f"(serve.max_queued_rows {self.serve.max_queued_rows}); retry shortly",
                headers={"Retry-After": "1"},
            )

    async def read_json(self, request: Request) -> tuple[Any, bool]:
        """The parsed body, and whether it was large enough to work on off the event loop."""
        body = await request.body()
        large = len(body) > INLINE_BYTES
        return (await run_in_threadpool(parse_json, body) if large else parse_json(body)), large

    async def submit(
        self, model: LoadedModel, instances: list[Any], large: bool
    ) -> asyncio.Future[BatchResult]:
        """Decode ``instances`` for ``model`` and queue them for the micro-batcher. Call it
        inside :meth:`MicroBatcher.admission` and await the result outside it, so the
        batcher knows no other request is on its way."""
        if large:
            rows = await run_in_threadpool(decode_instances, model.decoder, instances)
        else:
            rows = decode_instances(model.decoder, instances)
        return self.batcher.enqueue(model, rows)

    @staticmethod
    async def result(model: LoadedModel, future: asyncio.Future[BatchResult]) -> BatchResult:
        try:
            return await future
        except Exception as err:
            raise RequestRejectedError(
                500, "inference", f"inference failed on {model.version}: {err}"
            ) from err
