"""The whole loop, for every family, on a real project: run -> deploy (with its reference
profile) -> real server -> predictions -> feedback by prediction id -> `flywheel feedback
accept` -> a new DVC data version -> the next run trains on it and the gate decides; the
server, still up, serves the new production model when the gate promotes one; the card
says how many records came from feedback. What the suite refuses stays out of the data
with the expectation named; what the server cannot take is refused at once.

Per family, the round trip (accept -> the new version served) and the counts go to
``$FLYWHEEL_LOOP_FIGURES`` (JSON) when set. The cases are in :mod:`.loop_cases`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.figures import record_figures
from tests.integration.conftest import FAST_PARAMS
from tests.integration.loop_cases import CASES, Feedback
from tests.integration.serving_helpers import LiveServer

from flywheel.core.workspace import open_workspace
from flywheel.feedback.provenance import feedback_counts
from flywheel.monitor.reference import load_reference
from flywheel.release.registry import Registry
from flywheel.serving.app import create_app

pytestmark = [pytest.mark.slow]


def _sections(case: dict[str, Any]) -> dict[str, Any]:
    """The case's sections over the tiny ones, one variant, and a server that sees a
    promotion within a fraction of a second."""
    out = {name: dict(values) for name, values in FAST_PARAMS.items()}
    for name, values in case.items():
        out[name] = {**out.get(name, {}), **values} if isinstance(values, dict) else values
    out["compress"]["variants"] = ["fp32"]
    out["serve"] = {"poll_interval_s": 0.2}
    return out


def _run(project: Path) -> dict[str, Any]:
    from flows.pipeline import pipeline

    return dict(
        json.loads(
            pipeline(params_file=str(project / "params.yaml"), project=str(project))["record"]
        )
    )


def _accept(project: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "flywheel.cli", "feedback", "accept", "--all", "--json"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def _predict(client: httpx.Client, instances: list[Any]) -> list[str]:
    answer = client.post("/v1/predict", json={"instances": instances})
    assert answer.status_code == 200, answer.text
    return [p["prediction_id"] for p in answer.json()["predictions"]]


def _send(client: httpx.Client, fb: Feedback) -> dict[str, list[httpx.Response]]:
    """Everything a user sends: good and bad feedback by id, then what is refused."""
    sent = [*fb.good, fb.bad]
    ids = _predict(client, [instance for instance, _ in sent])
    stored = [
        client.post("/v1/feedback", json={"prediction_id": i, "label": label})
        for i, (_, label) in zip(ids, sent, strict=True)
    ]
    wrong_label = client.post(
        "/v1/feedback", json={"prediction_id": ids[0], "label": fb.refused_label}
    )
    unreadable = client.post("/v1/predict", json={"instances": [fb.refused_instance]})
    return {"stored": stored, "refused": [wrong_label, unreadable]}


def _served_version(client: httpx.Client, version: str, timeout: float = 120.0) -> str:
    """The version the server answers with, once it is ``version`` (or the timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        served = str(client.get("/v1/model").json()["version"])
        if served == version or time.monotonic() > deadline:
            return served
        time.sleep(0.1)


@pytest.mark.parametrize("family", list(CASES))
def test_feedback_by_id_becomes_data_and_the_next_run_trains_on_it(
    dvc_project: Any, prefect_backend: None, monkeypatch: pytest.MonkeyPatch, family: str
) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    case = CASES[family]
    project: Path = dvc_project(**_sections(case.sections))
    case.write_data(project)
    first = _run(project)
    assert first["deploy"]["status"] == "deployed", first
    ws = open_workspace(project / "params.yaml", project)
    registry = Registry(ws.layout.registry)
    assert load_reference(registry.version_dir("v0001")) is not None
    fb = case.feedback(project)

    with (
        LiveServer(create_app(ws.params, ws.layout)) as server,
        httpx.Client(base_url=server.url, timeout=60) as client,
    ):
        answers = _send(client, fb)
        assert [a.status_code for a in answers["stored"]] == [201] * (len(fb.good) + 1), [
            a.text for a in answers["stored"]
        ]
        wrong_label, unreadable = answers["refused"]
        assert wrong_label.status_code == 400 and "label" in wrong_label.json()["error"]
        assert unreadable.status_code == 400, unreadable.text
        assert fb.refused_error in unreadable.json()["error"], unreadable.text
        bad_id = answers["stored"][-1].json()["id"]

        started = time.monotonic()
        outcome = _accept(project)
        accepted_at = time.monotonic()
        second = _run(project)
        production = registry.production_version() or ""
        served = _served_version(client, production)
        round_trip = time.monotonic() - started

    assert len(outcome["accepted"]) == len(fb.good), outcome
    assert list(outcome["failed"]) == [bad_id], outcome
    assert fb.bad_expectation in outcome["failed"][bad_id], outcome
    assert second["data_hash"] == outcome["data_hash"] != first["data_hash"]
    assert second["stages"]["train"]["ran"], second
    decision = second["deploy"]["status"]
    assert decision in ("deployed", "refused"), second
    counts = feedback_counts(ws.layout)
    assert counts["feedback_records"] == len(fb.good), counts
    assert 0 < counts["feedback_train_rows"] <= len(fb.good), counts
    if decision == "deployed":
        assert production == "v0002" and served == production, (production, served)
        assert registry.card(production).run["feedback_records"] == len(fb.good)
    else:
        assert production == served == "v0001", (production, served)
    _record_figures(
        family,
        {
            "round_trip_s": round(round_trip, 2),
            "accept_s": round(accepted_at - started, 2),
            "decision": decision,
            "served": served,
            "accepted": len(outcome["accepted"]),
            "rejected_at_accept": len(outcome["failed"]),
            "refused_by_server": len(answers["refused"]),
            "feedback_train_rows": counts["feedback_train_rows"],
        },
    )


def _record_figures(family: str, figures: dict[str, Any]) -> None:
    record_figures("FLYWHEEL_LOOP_FIGURES", family, figures)
