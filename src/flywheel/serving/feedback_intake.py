"""``POST /v1/feedback``: a label for a logged prediction, or for an instance sent again.

``{"prediction_id": ..., "label": ...}`` refers to a prediction in the prediction log, so
the client need not resend what it asked about, and the record carries the prediction it
corrects (the monitor's live accuracy). ``{"instance": ..., "label": ...}`` is checked
and normalised as a predict body would be. The label is a class of the served model for
classifiers, or an observed value for regression: a finite number inside the range the
target's params declare (``validate.columns.<target>``). Blocking: run on the decode pool.
"""

from __future__ import annotations

import math
from typing import Any

from flywheel.core.errors import InputError
from flywheel.families.base import StoredInstance
from flywheel.monitor.prediction_log import is_record_id, now_iso, stored_instance
from flywheel.serving.feedback import OBSERVED
from flywheel.serving.model_holder import LoadedModel
from flywheel.serving.requests import RequestRejectedError, decode_instances, parse_json
from flywheel.serving.state import ServerState


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _target_range(model: LoadedModel) -> tuple[str, float | None, float | None]:
    params = model.card.params
    target = str((params.get("data") or {}).get("target", "target"))
    rule = ((params.get("validate") or {}).get("columns") or {}).get(target) or {}
    return target, rule.get("min"), rule.get("max")


def checked_label(model: LoadedModel, label: Any) -> str | float:
    """The label as it is stored, or a 400 naming what a valid one is."""
    if model.predictor.family.objective != "regression":
        if not isinstance(label, str) or label not in model.card.labels:
            raise RequestRejectedError(
                400,
                "unknown_label",
                f"label must be one of {list(model.card.labels)}, got {_show(label)}",
            )
        return label
    target, low, high = _target_range(model)
    if isinstance(label, bool) or not isinstance(label, int | float):
        raise RequestRejectedError(
            400,
            "invalid_label",
            f"label must be the observed {target} (a number), got {_show(label)}",
        )
    value = float(label)
    outside = (low is not None and value < low) or (high is not None and value > high)
    if not math.isfinite(value) or outside:
        raise RequestRejectedError(
            400,
            "invalid_label",
            f"label {_show(label)} is outside the declared range of {target} "
            f"[{low}, {high}] (validate.columns.{target})",
        )
    return value


def _from_instance(state: ServerState, model: LoadedModel, instance: Any) -> StoredInstance:
    limits = state.limits(model)
    # Only what the model could have answered is kept, and only in its normalised form.
    decode_instances(model.decoder, [instance], limits)
    try:
        return model.decoder.to_stored(instance, limits)
    except InputError as err:
        raise RequestRejectedError(400, "invalid_instance", str(err)) from None


def _from_log(state: ServerState, model: LoadedModel, prediction_id: Any) -> dict[str, Any]:
    if not is_record_id(prediction_id):
        raise RequestRejectedError(
            400,
            "invalid_request",
            f'"prediction_id" must be an id from /v1/predict, got {_show(prediction_id)}',
        )
    logged = state.logged_prediction(prediction_id)
    if logged is None:
        raise RequestRejectedError(
            404,
            "unknown_prediction",
            f"no logged prediction {prediction_id} (not sampled, or rotated out of the "
            'log); send {"instance": ..., "label": ...} instead',
        )
    if logged.get("task") != model.card.task:
        raise RequestRejectedError(
            409, "task_mismatch", f"prediction {prediction_id} was made for another task"
        )
    return logged


def _payload(body: bytes) -> dict[str, Any]:
    payload = parse_json(body)
    if not isinstance(payload, dict):
        raise RequestRejectedError(
            400, "invalid_request", f"body must be a JSON object, got {type(payload).__name__}"
        )
    if ("instance" in payload) == ("prediction_id" in payload):
        raise RequestRejectedError(
            400, "invalid_request", 'body must hold exactly one of "prediction_id" or "instance"'
        )
    if "label" not in payload:
        raise RequestRejectedError(400, "invalid_request", 'body is missing "label"')
    extra = sorted(set(payload) - {"instance", "prediction_id", "label"})
    if extra:
        raise RequestRejectedError(400, "invalid_request", f"unexpected fields {extra}")
    return payload


def store_feedback(state: ServerState, model: LoadedModel, body: bytes, sender: str) -> str:
    """Check a feedback body against ``model`` and keep it; the record's id."""
    payload = _payload(body)
    label = checked_label(model, payload["label"])
    meta: dict[str, Any] = {"model_version": model.version, "sender": sender}
    logged = None
    if "prediction_id" in payload:
        logged = _from_log(state, model, payload["prediction_id"])
        stored = stored_instance(logged["instance"])
        meta |= {
            "model_version": logged.get("model_version"),
            "prediction_id": logged["id"],
            "prediction": logged.get("prediction"),
        }
    else:
        stored = _from_instance(state, model, payload["instance"])
    folder = OBSERVED if isinstance(label, float) else None
    with state.quota.admit(sender, len(stored.data)):
        record_id = state.feedback.save(label, stored, meta, folder_name=folder)
    if logged is not None:
        state.predictions.append(
            [
                {
                    "kind": "feedback",
                    "id": record_id,
                    "prediction_id": logged["id"],
                    "time": now_iso(),
                    "model_version": logged.get("model_version"),
                    "label": label,
                    "prediction": logged.get("prediction"),
                }
            ]
        )
    state.metrics.feedback.labels(
        model_version=str(meta["model_version"]), kind="by_id" if logged else "by_instance"
    ).inc()
    return record_id
