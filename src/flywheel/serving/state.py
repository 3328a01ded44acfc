"""What every route of one server shares: the model holder, the batcher, the decode pool,
the metrics and the feedback inbox, and the one path from a request body to predictions."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from flywheel.core.errors import RemoteError
from flywheel.core.service_sections import ServeConfig
from flywheel.families.base import InstanceLimits
from flywheel.monitor.prediction_log import LogReader, PredictionLog
from flywheel.serving.batcher import BatchResult, MicroBatcher
from flywheel.serving.decoders import instance_limits
from flywheel.serving.decoding import DecodePool
from flywheel.serving.feedback import FeedbackStore
from flywheel.serving.feedback_quota import FeedbackQuota
from flywheel.serving.group_commit import GroupCommit
from flywheel.serving.model_holder import LoadedModel, ModelHolder
from flywheel.serving.requests import (
    RequestRejectedError,
    decode_instances,
    instances_of,
    parse_json,
)
from flywheel.serving.telemetry import ServingMetrics

if TYPE_CHECKING:
    from flywheel.serving.follower import RemoteFollower
    from flywheel.serving.log_shipping import ShippingTask

log = logging.getLogger("flywheel.serving")


@dataclass(frozen=True)
class ServerState:
    serve: ServeConfig
    holder: ModelHolder
    batcher: MicroBatcher
    metrics: ServingMetrics
    feedback: FeedbackStore
    decoding: DecodePool
    quota: FeedbackQuota
    # What was answered, for feedback by prediction id and the monitor.
    predictions: PredictionLog
    # Whether bearer auth is on: only then does a token say who a client is.
    authenticated: bool = False
    # The monitor flow's latest report, read into the gauges on /metrics.
    monitor_report: Path | None = None
    # A replica following the team remote's production alias (None: local only).
    follower: RemoteFollower | None = None
    # A replica's log shipped to the team remote, and every replica's log read from it
    # (for feedback naming a prediction another replica answered). None: local only.
    shipping: ShippingTask | None = None
    shared_predictions: LogReader | None = None
    # Answered requests on their way into the prediction log (see prediction_logging).
    log_groups: GroupCommit[Any] = field(default_factory=GroupCommit)

    def logged_prediction(self, prediction_id: str) -> dict[str, Any] | None:
        """A logged prediction by id: this replica's log first, then the team's. Blocking."""
        found = self.predictions.find(prediction_id)
        if found is None and self.shared_predictions is not None:
            if self.shipping is not None:
                self.shipping.ship()  # so this replica's newest lines are there too
            try:
                found = self.shared_predictions.find(prediction_id)
            except RemoteError as err:
                log.error("shared prediction log not read: %s", err)
                raise RequestRejectedError(
                    503, "remote_unavailable", "the team's prediction log cannot be read; retry"
                ) from None
        return found

    def serving_model(self) -> LoadedModel:
        model = self.holder.current
        if model is None:
            raise RequestRejectedError(
                503, "not_ready", "no production model is being served yet; retry later"
            )
        return model

    def limits(self, model: LoadedModel) -> InstanceLimits:
        return instance_limits(self.serve, model.card)

    def refuse_when_overloaded(self) -> None:
        self.decoding.refuse_when_full()
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

    def decode_body(self, model: LoadedModel, body: bytes) -> np.ndarray:
        """A predict body to rows for ``model``. Blocking: run it on :attr:`decoding`."""
        return self.decode_body_keeping(model, body)[0]

    def decode_body_keeping(self, model: LoadedModel, body: bytes) -> tuple[np.ndarray, list]:
        """:meth:`decode_body`, and the instances it decoded (for the prediction log)."""
        instances = instances_of(parse_json(body), self.serve.max_instances)
        return decode_instances(model.decoder, instances, self.limits(model)), instances

    async def submit(self, model: LoadedModel, body: bytes) -> asyncio.Future[BatchResult]:
        """Decode ``body`` for ``model`` off the event loop and queue its rows for the
        micro-batcher. Call it inside :meth:`MicroBatcher.admission` and await the result
        outside it, so the batcher knows no other request is on its way."""
        with self.decoding.slot():
            rows = await self.decoding.run(self.decode_body, model, body)
        return self.batcher.enqueue(model, rows)

    @staticmethod
    async def result(model: LoadedModel, future: asyncio.Future[BatchResult]) -> BatchResult:
        try:
            return await future
        except Exception:
            # ONNX Runtime's message names graph nodes and internal files: logged, not sent.
            log.exception("inference failed on %s", model.version)
            raise RequestRejectedError(
                500, "inference", f"inference failed on model {model.version}"
            ) from None
