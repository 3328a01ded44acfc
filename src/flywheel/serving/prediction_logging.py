"""Predictions into the prediction log, each with the id its answer carries.

Instances are kept in their stored form (the bytes feedback would keep, see
:meth:`flywheel.families.base.Family.stored_form`), so feedback that names a prediction id
becomes data without the client sending the instance again. Blocking: the server runs it
on the decode pool after the answer is computed.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from flywheel.core.errors import InputError
from flywheel.monitor.prediction_log import now_iso, stored_entry
from flywheel.serving.model_holder import LoadedModel
from flywheel.serving.state import ServerState

log = logging.getLogger("flywheel.serving")


def new_ids(n: int) -> list[str]:
    return [uuid.uuid4().hex for _ in range(n)]


def log_predictions(
    state: ServerState,
    model: LoadedModel,
    instances: list[Any],
    answers: list[dict[str, Any]],
    request_id: str,
) -> None:
    limits = state.limits(model)
    records = []
    when = now_iso()
    for instance, answer in zip(instances, answers, strict=True):
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
                "request_id": request_id,
                "time": when,
                "model_version": model.version,
                "task": model.card.task,
                "instance": stored_entry(stored),
                "prediction": prediction,
            }
        )
    state.predictions.append(records)
    state.metrics.predictions_logged.labels(model_version=model.version).inc(len(records))
