"""Request bodies to instances, and the refusals a client can act on.

Every refusal is a :class:`RequestRejectedError`: a 4xx (or 503) status, a short kind for
metrics, and a message naming the problem. JSON is parsed strictly: no NaN or Infinity, no
numbers that overflow a double.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from flywheel.core.errors import InputError
from flywheel.families.base import InstanceLimits
from flywheel.serving.batcher import BatchResult
from flywheel.serving.decoders import FamilyDecoder


class RequestRejectedError(Exception):
    """A request the server will not serve; becomes ``{"error", "kind"}`` with ``status``."""

    def __init__(
        self, status: int, kind: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.message = message
        self.headers = headers


def _reject_constant(name: str) -> Any:
    raise RequestRejectedError(
        400, "invalid_json", f"{name} is not valid JSON; send finite numbers only"
    )


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise RequestRejectedError(400, "invalid_json", f"number {text[:32]} is out of range")
    return value


def parse_json(body: bytes) -> Any:
    if not body.strip():
        raise RequestRejectedError(
            400, "invalid_json", "request body is empty; expected a JSON object"
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as err:
        raise RequestRejectedError(
            400, "invalid_json", f"request body is not valid UTF-8 (byte {err.start})"
        ) from None
    try:
        return json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except RecursionError:
        raise RequestRejectedError(400, "invalid_json", "JSON is nested too deeply") from None
    except json.JSONDecodeError as err:
        raise RequestRejectedError(
            400,
            "invalid_json",
            f"request body is not valid JSON: {err.msg} at line {err.lineno} column {err.colno}",
        ) from None
    except ValueError:  # integers longer than Python converts (sys.get_int_max_str_digits)
        raise RequestRejectedError(
            400, "invalid_json", "request body holds a number with too many digits"
        ) from None


def object_with(payload: Any, required: str) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise RequestRejectedError(
            400,
            "invalid_request",
            f'body must be a JSON object with "{required}", got {type(payload).__name__}',
        )
    if required not in payload:
        raise RequestRejectedError(400, "invalid_request", f'body is missing "{required}"')
    return payload


def instances_of(payload: Any, max_instances: int) -> list[Any]:
    instances = object_with(payload, "instances")["instances"]
    if not isinstance(instances, list):
        raise RequestRejectedError(
            400, "invalid_request", f'"instances" must be a list, got {type(instances).__name__}'
        )
    if not instances:
        raise RequestRejectedError(
            400, "invalid_request", '"instances" is empty; send at least one'
        )
    if len(instances) > max_instances:
        raise RequestRejectedError(
            413,
            "too_many_instances",
            f"{len(instances)} instances is more than the limit of {max_instances}",
        )
    return instances


def decode_instances(
    decoder: FamilyDecoder, instances: list[Any], limits: InstanceLimits | None = None
) -> np.ndarray:
    try:
        return decoder.decode(instances, limits)
    except InputError as err:
        raise RequestRejectedError(400, "invalid_instance", str(err)) from None


def _finite(value: Any) -> bool:
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    return not isinstance(value, float) or math.isfinite(value)


def prediction_body(result: BatchResult) -> tuple[dict[str, Any], dict[str, str]]:
    for i, prediction in enumerate(result.predictions):
        if not _finite(prediction.fields):
            # Finite inputs far outside the training range can still overflow the model;
            # JSON has no inf, and the answer would be meaningless anyway.
            raise RequestRejectedError(
                422,
                "non_finite_output",
                f"instance {i}: the model's output is not a finite number; the input lies "
                "far outside the range the model was trained on",
            )
    body = {
        "predictions": [p.as_dict() for p in result.predictions],
        "model_version": result.version,
    }
    headers = {
        "X-Model-Version": result.version,
        "Server-Timing": (
            f"queue;dur={result.queue_seconds * 1000:.3f}, "
            f"ort;dur={result.ort_seconds * 1000:.3f}, "
            f'batch;desc="{result.batch_size}"'
        ),
    }
    return body, headers
