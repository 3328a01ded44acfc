"""Predictions into the prediction log, each with the id its answer carries.

Instances are kept in their stored form (the bytes feedback would keep, see
:meth:`flywheel.families.base.Family.stored_form`), so feedback that names a prediction id
becomes data without the client sending the instance again. The writing runs on the decode
pool after the answer is computed, once for every group of requests answered meanwhile.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

from flywheel.core.errors import InputError
from flywheel.monitor.prediction_log import now_iso, stored_entry
from flywheel.serving.batcher import BatchResult
from flywheel.serving.model_holder import LoadedModel
from flywheel.serving.requests import prediction_body
from flywheel.serving.state import ServerState

log = logging.getLogger("flywheel.serving")


def new_ids(n: int) -> list[str]:
    return [uuid.uuid4().hex for _ in range(n)]


@dataclass(frozen=True)
class Answered:
    """One request's answers (each with its prediction id) and the instances they answer."""

    model: LoadedModel
    instances: list[Any]
    answers: list[dict[str, Any]]
    request_id: str


async def answered_body(
    state: ServerState, model: LoadedModel, result: BatchResult, instances: list[Any]
) -> tuple[dict[str, Any], dict[str, str]]:
    """``/v1``'s answer body, each prediction with its id, logged (when sampled) before it is
    returned, and its headers (timings, version, ``X-Request-Id``); ``/v2`` answers from the
    same body, so the monitor and feedback see both protocols' traffic."""
    body, headers = prediction_body(result)
    answers = body["predictions"]
    for answer, prediction_id in zip(answers, new_ids(len(answers)), strict=True):
        answer["prediction_id"] = prediction_id
    headers["X-Request-Id"] = request_id = uuid.uuid4().hex
    if state.predictions.sampled():
        await log_answered(state, Answered(model, instances, answers, request_id))
    return body, headers


async def log_answered(state: ServerState, answered: Answered) -> None:
    """Into the log before the answer goes out (feedback may name its ids at once),
    grouped with the other requests answered meanwhile (:mod:`.group_commit`)."""

    async def write(group: list[Answered]) -> None:
        await state.decoding.run(write_answered, state, group)

    await state.log_groups.submit(answered, write)


def write_answered(state: ServerState, group: list[Answered]) -> None:
    """Blocking: the stored forms and one append for every request of ``group``."""
    when = now_iso()
    per_request = [_records(state, answered, when) for answered in group]
    state.predictions.append([record for records in per_request for record in records])
    for answered, records in zip(group, per_request, strict=True):
        state.metrics.predictions_logged.labels(model_version=answered.model.version).inc(
            len(records)
        )


def _records(state: ServerState, answered: Answered, when: str) -> list[dict[str, Any]]:
    model = answered.model
    limits = state.limits(model)
    records = []
    for instance, answer in zip(answered.instances, answered.answers, strict=True):
        try:
            stored = model.decoder.to_stored(instance, limits)
        except InputError:
            # Decoded for the model but not storable: answered, never referable by feedback.
            log.warning("prediction %s not logged: no stored form", answer["prediction_id"])
            continue
        prediction = {k: v for k, v in answer.items() if k != "prediction_id"}
        records.append(
            {
                "kind": "prediction",
                "id": answer["prediction_id"],
                "request_id": answered.request_id,
                "time": when,
                "model_version": model.version,
                "task": model.card.task,
                "instance": stored_entry(stored),
                "prediction": prediction,
            }
        )
    return records
