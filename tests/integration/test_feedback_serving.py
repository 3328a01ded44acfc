"""Predictions and feedback over real HTTP for every family: uvicorn on a loopback port,
a real registry holding a tiny ONNX model with the family's own preprocessing spec."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.integration.serving_helpers import LiveServer
from tests.served_models import TASKS, registry_with

from flywheel.core.config import parse_params
from flywheel.core.layout import Layout
from flywheel.core.loop_sections import MonitorConfig
from flywheel.monitor.prediction_log import PredictionLog
from flywheel.serving.app import create_app

TARGET_RANGE = {"validate": {"columns": {"target": {"min": 0.0, "max": 100.0}}}}


@contextlib.contextmanager
def served(task: str, root: Path, **serve: Any) -> Iterator[tuple[httpx.Client, Layout, Any]]:
    extra = TARGET_RANGE if task == "tabular_regression" else None
    raw, instance = registry_with(task, root, extra)
    raw = {
        **raw,
        "paths": {"registry": str(root / "registry")},
        "data": {**raw.get("data", {}), "path": str(root / "data"), "feedback_inbox": "inbox"},
        "serve": {"poll_interval_s": 0.05, **serve},
    }
    params = parse_params(raw)
    layout = Layout.from_params(params, root)
    with (
        LiveServer(create_app(params, layout)) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        yield client, layout, instance


def good_label(task: str) -> Any:
    return 42.5 if task == "tabular_regression" else "pos"


def bad_label(task: str) -> Any:
    return 1e9 if task == "tabular_regression" else "maybe"


@pytest.mark.slow
@pytest.mark.parametrize("task", TASKS)
def test_feedback_by_prediction_id_and_by_instance(task: str, tmp_path: Path) -> None:
    with served(task, tmp_path) as (client, layout, instance):
        answer = client.post("/v1/predict", json={"instances": [instance, instance]})
        assert answer.status_code == 200, answer.text
        ids = [p["prediction_id"] for p in answer.json()["predictions"]]
        assert len(set(ids)) == 2 and answer.headers["x-request-id"]
        by_id = client.post(
            "/v1/feedback", json={"prediction_id": ids[0], "label": good_label(task)}
        )
        by_instance = client.post(
            "/v1/feedback", json={"instance": instance, "label": good_label(task)}
        )
        refusals = {
            "bad label": client.post(
                "/v1/feedback", json={"prediction_id": ids[1], "label": bad_label(task)}
            ),
            "unknown id": client.post(
                "/v1/feedback", json={"prediction_id": "0" * 32, "label": good_label(task)}
            ),
            "malformed id": client.post(
                "/v1/feedback", json={"prediction_id": "../x", "label": good_label(task)}
            ),
            "both": client.post(
                "/v1/feedback",
                json={"prediction_id": ids[1], "instance": instance, "label": good_label(task)},
            ),
            "no label": client.post("/v1/feedback", json={"prediction_id": ids[1]}),
            "not an object": client.post("/v1/feedback", json=[1]),
        }
        record = client.get(f"/v1/feedback/{by_id.json()['id']}").json()
        metrics = client.get("/metrics").text

    assert by_id.status_code == 201, by_id.text
    assert by_instance.status_code == 201, by_instance.text
    statuses = {name: r.status_code for name, r in refusals.items()}
    assert statuses == {
        "bad label": 400,
        "unknown id": 404,
        "malformed id": 400,
        "both": 400,
        "no label": 400,
        "not an object": 400,
    }, {n: r.text for n, r in refusals.items()}
    assert all(r.json()["error"] for r in refusals.values())
    assert record["prediction_id"] == ids[0] and record["model_version"] == "v0001"
    assert record["prediction"] == {
        k: v for k, v in answer.json()["predictions"][0].items() if k != "prediction_id"
    }
    assert record["label"] == good_label(task) and record["sender"]
    # The instance named by id is the very bytes the log kept, now a file in the inbox.
    logged = PredictionLog(layout.prediction_log, MonitorConfig()).find(ids[0])
    assert logged is not None and logged["request_id"] == answer.headers["x-request-id"]
    stored = (layout.feedback_inbox / record["file"]).read_bytes()  # type: ignore[operator]
    if "json" in logged["instance"]:
        assert json.loads(stored) == logged["instance"]["json"]
    assert 'flywheel_feedback_records_total{kind="by_id",model_version="v0001"} 1.0' in metrics
    assert 'flywheel_predictions_logged_total{model_version="v0001"} 2.0' in metrics


@pytest.mark.slow
def test_feedback_quota_per_sender_is_kept_for_feedback_by_id(tmp_path: Path) -> None:
    task = "text_classification"
    with served(task, tmp_path, feedback_max_per_sender=2) as (client, _, instance):
        answer = client.post("/v1/predict", json={"instances": [instance] * 3}).json()
        statuses = [
            client.post(
                "/v1/feedback", json={"prediction_id": p["prediction_id"], "label": "neg"}
            ).status_code
            for p in answer["predictions"]
        ]
    assert statuses == [201, 201, 429]


@pytest.mark.slow
def test_nothing_is_logged_at_sample_rate_zero(tmp_path: Path) -> None:
    raw_extra = {"monitor": {"sample_rate": 0.0}}
    raw, instance = registry_with("text_classification", tmp_path, raw_extra)
    raw["paths"] = {"registry": str(tmp_path / "registry")}
    raw["data"] = {"path": str(tmp_path / "data"), "feedback_inbox": "inbox"}
    params = parse_params(raw)
    layout = Layout.from_params(params, tmp_path)
    with (
        LiveServer(create_app(params, layout)) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        answer = client.post("/v1/predict", json={"instances": [instance]}).json()
        pid = answer["predictions"][0]["prediction_id"]
        refused = client.post("/v1/feedback", json={"prediction_id": pid, "label": "pos"})
    assert refused.status_code == 404 and "not sampled" in refused.json()["error"]
    assert not list(layout.prediction_log.glob("*.jsonl"))
