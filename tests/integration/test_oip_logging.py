"""/v2 answers reach the prediction log like /v1's: the monitor and feedback see both
protocols' traffic, and each answer names the prediction ids feedback can cite."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import pytest
from tests.faults.hostile_server import LABELS
from tests.integration.oip_served import (
    Served,
    served_fixture,  # noqa: F401 - the `served` fixture: one server per family
    v2_tensors,
)

pytestmark = [pytest.mark.slow]


def _logged_total(served: Served) -> float:
    metrics = httpx.get(f"{served.url}/metrics", timeout=10).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("flywheel_predictions_logged_total{")
    )


def test_v2_answers_are_logged_and_named_for_feedback(served: Served) -> None:
    inputs = [
        {"name": name, "datatype": datatype, "shape": list(array.shape), "data": _json_data(array)}
        for name, datatype, array in v2_tensors(served.task)
    ]
    before = _logged_total(served)
    answer = httpx.post(
        f"{served.url}/v2/models/{served.task}/infer", json={"inputs": inputs}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    ids = answer.json()["parameters"]["prediction_ids"]
    assert len(set(ids)) == 3 and answer.headers["x-request-id"]
    assert _logged_total(served) == before + 3  # the monitor sees v2 traffic too
    label = 1.0 if served.task == "tabular_regression" else LABELS[0]
    feedback = httpx.post(
        f"{served.url}/v1/feedback", json={"prediction_id": ids[0], "label": label}, timeout=30
    )
    # Found by its id (a regression label outside the validated range is a 400, not a 404).
    assert feedback.status_code in ((201, 400) if label == 1.0 else (201,)), feedback.text


def _json_data(array: np.ndarray) -> list[Any]:
    flat = array.ravel()
    return [v.decode() for v in flat] if array.dtype == object else flat.tolist()
