"""The whole loop for tabular regression on a real project: run -> deploy (with its
reference profile) -> real server -> predictions -> feedback by prediction id ->
`flywheel feedback accept` -> a new DVC data version -> the next run trains on it and the
gate decides; the card says how many records came from feedback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.integration.test_serving import LiveServer
from tests.tabular_data import TARGET, diabetes_frame, diabetes_params, write_diabetes

from flywheel.core.workspace import open_workspace
from flywheel.feedback.provenance import feedback_counts
from flywheel.monitor.reference import load_reference
from flywheel.release.registry import Registry
from flywheel.serving.app import create_app

pytestmark = [pytest.mark.slow]


def _run(project: Path) -> dict[str, Any]:
    from flows.pipeline import pipeline

    return dict(
        json.loads(
            pipeline(params_file=str(project / "params.yaml"), project=str(project))["record"]
        )
    )


def _feedback(client: httpx.Client, rows: list[dict[str, Any]]) -> list[httpx.Response]:
    features = [{k: v for k, v in r.items() if k != TARGET} for r in rows]
    answer = client.post("/v1/predict", json={"instances": features})
    assert answer.status_code == 200, answer.text
    ids = [p["prediction_id"] for p in answer.json()["predictions"]]
    return [
        client.post("/v1/feedback", json={"prediction_id": i, "label": float(r[TARGET])})
        for i, r in zip(ids, rows, strict=True)
    ]


def test_feedback_by_id_becomes_data_and_the_next_run_trains_on_it(
    dvc_project: Any, prefect_backend: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    raw = diabetes_params(
        data={"path": "table"},
        validate={"suite": "diabetes-loop"},
        train={"max_epochs": 10, "patience": 5},
        compress={"variants": ["fp32"]},
    )
    project: Path = dvc_project(**raw)
    frame = diabetes_frame()
    write_diabetes(project / "table" / "diabetes.csv", frame)
    first = _run(project)
    assert first["deploy"]["status"] == "deployed", first
    ws = open_workspace(project / "params.yaml", project)
    registry = Registry(ws.layout.registry)
    assert load_reference(registry.version_dir("v0001")) is not None

    # New patients (perturbed rows), their observed progression sent back by prediction id.
    fresh = frame.iloc[:6].copy()
    fresh["s1"] = fresh["s1"] + 0.5
    rows = [{k: (None if v != v else v) for k, v in r.items()} for r in fresh.to_dict("records")]
    rows[5][TARGET] = 1_000.0  # outside validate.columns.progression: refused at once
    with (
        LiveServer(create_app(ws.params, ws.layout)) as server,
        httpx.Client(base_url=server.url, timeout=60) as client,
    ):
        answers = _feedback(client, rows)
    assert [a.status_code for a in answers] == [201] * 5 + [400], [a.text for a in answers]

    done = subprocess.run(
        [sys.executable, "-m", "flywheel.cli", "feedback", "accept", "--all", "--json"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout)
    assert len(outcome["accepted"]) == 5 and not outcome["failed"], outcome

    second = _run(project)
    assert second["data_hash"] == outcome["data_hash"] != first["data_hash"]
    assert second["stages"]["train"]["ran"], second
    assert second["deploy"]["status"] in ("deployed", "refused"), second
    counts = feedback_counts(ws.layout)
    assert counts["feedback_records"] == 5 and 0 < counts["feedback_train_rows"] <= 5
    if second["deploy"]["status"] == "deployed":
        card = registry.card(registry.production_version() or "")
        assert card.run["feedback_records"] == 5
