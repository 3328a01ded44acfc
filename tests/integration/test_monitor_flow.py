"""The monitor flow on a real Prefect server: predictions sent to a real model server are
compared with the model's reference profile (written from its training split), and
shifted traffic emits ``flywheel.drift.detected``, read back through the server's API;
unshifted traffic emits nothing."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import yaml
from tests.integration.test_serving import LiveServer
from tests.served_models import registry_with

from flywheel.core.workspace import open_workspace
from flywheel.datasets.hashing import data_hash
from flywheel.families.base import StoredInstance, canonical_json
from flywheel.feedback.inbox import Inbox
from flywheel.monitor.reference import load_reference, write_reference
from flywheel.release.registry import Registry
from flywheel.serving.app import create_app
from flywheel.serving.feedback import OBSERVED, FeedbackStore
from flywheel.triggers.events import DRIFT_DETECTED

pytestmark = [pytest.mark.slow]


def make_project(root: Path, feedback: dict[str, Any] | None = None) -> Any:
    raw, _ = registry_with("tabular_regression", root)
    raw |= {
        "data": {"kind": "table", "path": "table", "numeric_columns": ["x"], "target": "target"},
        "validate": {"suite": "t", "labels": []},
        "paths": {"registry": "registry"},
        "monitor": {"min_window": 50, "window": 400},
        "feedback": feedback or {},
    }
    (root / "params.yaml").write_text(yaml.safe_dump(raw))
    rng = np.random.default_rng(0)
    (root / "table").mkdir()
    lines = ["x,target"] + [f"{x:.5f},{2 * x:.5f}" for x in rng.normal(0, 1, 600)]
    (root / "table" / "data.csv").write_text("\n".join(lines) + "\n")
    ws = open_workspace(root / "params.yaml", root)
    ws.layout.preprocessed_dir.mkdir(parents=True)
    train = [f"data.csv:{i}" for i in range(1, 601)]
    ws.layout.split_index.write_text(json.dumps({"train": train, "val": [], "test": []}))
    write_reference(ws, Registry(ws.layout.registry), "v0001", 500)
    return ws


def send(ws: Any, values: np.ndarray) -> None:
    with (
        LiveServer(create_app(ws.params, ws.layout)) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        for chunk in np.array_split(values, 4):
            body = {"instances": [{"x": float(x)} for x in chunk]}
            assert client.post("/v1/predict", json=body).status_code == 200


def drift_events(api: str) -> list[dict[str, Any]]:
    body = {"filter": {"event": {"name": [DRIFT_DETECTED]}}, "limit": 50}
    response = httpx.post(f"{api}/events/filter", json=body, timeout=30)
    response.raise_for_status()
    return list(response.json()["events"])


def wait_for_events(api: str, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        events = drift_events(api)
        if len(events) >= count or time.monotonic() > deadline:
            return events
        time.sleep(0.5)


def test_shifted_traffic_is_reported_and_emits_drift_unshifted_does_not(
    tmp_path: Path, prefect_backend: None
) -> None:
    from flows.monitor import monitor
    from prefect.settings import PREFECT_API_URL

    api = str(PREFECT_API_URL.value())
    before = len(drift_events(api))
    ws = make_project(tmp_path)
    reference = load_reference(Registry(ws.layout.registry).version_dir("v0001"))
    assert reference is not None and set(reference["numeric"]) == {"x", "prediction_value"}
    rng = np.random.default_rng(7)
    params = {"params_file": str(tmp_path / "params.yaml"), "project": str(tmp_path)}

    send(ws, rng.normal(0, 1, 300))
    calm = monitor(**params)
    shutil.rmtree(ws.layout.prediction_log)
    send(ws, rng.normal(2.5, 1, 300))
    shifted = monitor(**params)

    assert calm["verdict"] == "no drift" and calm["drift_share"] == 0.0, calm
    assert calm["window"] == 300 and "event_id" not in calm
    assert shifted["verdict"] == "drift" and shifted["drift_share"] == 1.0, shifted
    assert set(shifted["drifted_features"]) == {"x", "prediction_value"}
    events = wait_for_events(api, before + 1)
    assert len(events) == before + 1, events
    (event,) = [e for e in events if e["id"] == shifted["event_id"]]
    assert event["resource"]["flywheel.model_version"] == "v0001"
    assert event["payload"]["drift_share"] == 1.0
    # The server exports the latest report.
    with (
        LiveServer(create_app(ws.params, ws.layout)) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        metrics = client.get("/metrics").text
    assert 'flywheel_drift_share_ratio{model_version="v0001"} 1.0' in metrics


def test_auto_accept_takes_the_inbox_in_before_monitoring(
    tmp_path: Path, prefect_backend: None
) -> None:
    from flows.monitor import monitor

    from flywheel.pipeline.dvc import init_repository
    from flywheel.stages.validate.suite import save_suite

    ws = make_project(tmp_path, {"auto_accept": False, "max_per_sender": 1})
    init_repository(tmp_path, author="ci")
    save_suite(ws.params, ws.layout)
    inbox = Inbox(ws.layout.feedback_inbox or ws.layout.root / "feedback")
    store = FeedbackStore(inbox.folder)
    meta = {"model_version": "v0001", "sender": "s1"}
    first = store.save(
        1.5, StoredInstance(canonical_json({"x": 0.75}), ".instance.json"), meta, OBSERVED
    )
    time.sleep(0.01)  # the inbox orders records by arrival, to the millisecond
    second = store.save(
        -1.0, StoredInstance(canonical_json({"x": -0.5}), ".instance.json"), meta, OBSERVED
    )
    params = {"params_file": str(tmp_path / "params.yaml"), "project": str(tmp_path)}

    monitor(**params)  # auto_accept off: a person decides
    assert {r.id: r.status for r in inbox.records()} == {first: "pending", second: "pending"}

    raw = yaml.safe_load((tmp_path / "params.yaml").read_text())
    raw["feedback"]["auto_accept"] = True
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    report = monitor(**params)

    assert report["model_version"] == "v0001"  # the monitor still ran after the review
    (part,) = (tmp_path / "table").glob("feedback-*.csv")
    assert "0.75" in part.read_text() and "-0.5" not in part.read_text()
    recorded = yaml.safe_load((tmp_path / "table.dvc").read_text())["outs"][0]["md5"]
    assert recorded == data_hash(tmp_path / "table")
    # Over the sender's cap: left for a person, with the cap named, and not retried.
    (left,) = inbox.records()
    assert (left.id, left.summary()["failed"]) == (second, ["feedback.max_per_sender"])
