"""The model server's /metrics over real HTTP: requests, batches and the live version."""

from __future__ import annotations

from typing import Any

import pytest
from tests.integration.serving_helpers import (
    metric_value,
    serving,
)

# --- metrics ---------------------------------------------------------------------------


@pytest.mark.slow
def test_metrics_count_requests_batches_and_version(workspace: Any) -> None:
    params, layout, _ = workspace
    with serving(params, layout) as (_, client):
        for _ in range(3):
            client.post("/v1/predict", json={"instances": [[[0] * 8] * 8] * 2})
        client.post("/v1/predict", json={"instances": []})
        r = client.get("/metrics")
    text = r.text
    assert r.headers["content-type"].startswith("text/plain")
    route = "/v1/predict"
    assert metric_value(text, "flywheel_http_requests_total", route=route, status="200") == 3
    assert metric_value(text, "flywheel_http_requests_total", route=route, status="400") == 1
    assert metric_value(text, "flywheel_http_request_duration_seconds_count", route=route) == 4
    assert metric_value(text, "flywheel_batch_size_count") == 3
    assert metric_value(text, "flywheel_batch_size_sum") == 6
    assert metric_value(text, "flywheel_model_info", version="v0001", variant="fp32") == 1
    assert metric_value(text, "flywheel_errors_total", kind="invalid_request") == 1
    assert "flywheel_model_load_refused_total" in text or "flywheel_model_load_refused" in text
