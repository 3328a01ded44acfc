"""`flywheel up` against a real Prefect server: data-change triggers, debounce, restarts,
bad data, and the cron schedule from params.

One server (started here, on a free loopback port, SQLite in a temporary PREFECT_HOME) and
one project serve every test; `flywheel up --detach` runs the serve process and the watcher
against it. The tests run in file order and build on each other's state, which keeps the
module to three trainings:

    startup            data unknown to production -> run 1 -> v0001
    serve killed       supervisor restarts it; 10 new images -> exactly run 2 -> v0002
    burst              20 changes in ~4.5 s -> one run (+ at most a no-op follow-up) -> v0003
    touch              no content change -> no run
    duplicate event    data already in production -> a run that exits 'nothing to do'
    bad data           a corrupt PNG -> the run fails naming the expectation; v0003 stays
    schedule           cron from params on the deployment; edit + restart `up` -> new cron
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import yaml
from tests.integration.service_helpers import (
    SERVICE_PARAMS,
    Service,
    _overlaps,
    _registry,
    _up_state,
    cli,
    digit_image,
    make_project,
    start_server,
    stop_group,
    wait_for,
)

from flywheel.core.workspace import open_workspace
from flywheel.datasets.hashing import data_hash
from flywheel.pipeline.names import short_hash
from flywheel.release.predictor import Predictor
from flywheel.supervise.api import PrefectApi
from flywheel.supervise.ports import free_port
from flywheel.supervise.state import ServicePaths, pid_alive, read_state
from flywheel.triggers.events import emit_data_changed

pytestmark = [pytest.mark.slow]

RUN_TIMEOUT = 300  # one tiny pipeline on 2 busy cores takes ~1 min; leave room


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int, Path]]:
    home = tmp_path_factory.mktemp("prefect-home")
    port = free_port()
    proc, api = start_server(home, port)
    try:
        yield api, port, home
    finally:
        stop_group(proc)


@pytest.fixture(scope="module")
def svc(
    server: tuple[str, int, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    api_url, _port, home = server
    project = make_project(tmp_path_factory.mktemp("svc") / "project", SERVICE_PARAMS)
    env = {
        **os.environ,
        "PREFECT_API_URL": api_url,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    started = cli(project, env, "up", "--detach")
    assert started.returncode == 0, started.stdout + started.stderr
    api = PrefectApi(api_url)
    try:
        yield Service(project, env, api)
    finally:
        api.close()
        state = read_state(ServicePaths(project))
        cli(project, env, "down", timeout=120)
        # Belt and braces: nothing this module started may outlive it.
        for child in ((state or {}).get("children") or {}).values():
            if child.get("pid") and pid_alive(child["pid"]):
                os.killpg(child["pid"], signal.SIGKILL)


def test_up_on_a_busy_port_is_a_clear_error(
    svc: Service, server: tuple[str, int, Path], tmp_path: Path
) -> None:
    _api, port, _home = server
    other = tmp_path / "other"  # a second project: the first one already has its `up`
    other.mkdir()
    for name in ("dvc.yaml", "params.yaml"):
        (other / name).write_text((svc.project / name).read_text())
    env = {k: v for k, v in svc.env.items() if k != "PREFECT_API_URL"}
    # An error, not a hang: a hang runs into the timeout (no wall-clock bound below it: a
    # loaded machine takes seconds just to import the CLI).
    result = cli(other, env, "up", "--port", str(port), timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
    assert "a Prefect server already answers there" in result.stderr
    assert read_state(ServicePaths(other)) is None


def test_startup_run_then_one_run_per_change_after_serve_was_killed(svc: Service) -> None:
    registry = _registry(svc)
    initial = data_hash(svc.data)
    # The data is unknown to production, so the watcher announces it at startup.
    (first,) = svc.settled_runs(1, RUN_TIMEOUT)
    assert first["state_type"] == "COMPLETED", first
    assert first["name"] == short_hash(initial)
    assert {"dataset:data", "trigger:event"} <= set(first["tags"])
    assert first["parameters"]["data_hash"] == initial
    assert registry.production_version() == "v0001"

    # Kill the serve process: the supervisor restarts it and it re-registers the deployment.
    before = _up_state(svc)["children"]["serve"]
    killed_at = datetime.now().astimezone()
    os.kill(before["pid"], signal.SIGKILL)
    wait_for(
        lambda: (c := _up_state(svc)["children"]["serve"])["pid"] != before["pid"] and c["alive"],
        120,
        "the supervisor to restart the serve process",
    )
    wait_for(
        lambda: datetime.fromisoformat(svc.deployment_info()["updated"]) > killed_at,
        90,
        "the restarted serve process to register the deployment",
    )
    assert _up_state(svc)["children"]["serve"]["restarts"] == before["restarts"] + 1

    # Ten new images of one class: exactly one run, and a new production version on them.
    for i in range(10):
        (svc.data / "3" / f"new-{i:02d}.png").write_bytes(digit_image(3, i))
    changed = data_hash(svc.data)
    runs = svc.settled_runs(2, RUN_TIMEOUT)
    assert len(runs) == 2, [r["name"] for r in runs]
    second = runs[1]
    assert second["state_type"] == "COMPLETED", second
    assert second["name"] == short_hash(changed)
    production = registry.production()
    assert production is not None and production.version == "v0002"
    assert production.data_hash == changed

    artifacts = {a["key"]: a for a in svc.api.artifacts(second["id"]) if a.get("key")}
    assert {"run-summary", "variants", "data-docs", "training-progress"} <= set(artifacts)
    # Prefect stores a link artifact as markdown: [text](url)
    assert "Great Expectations Data Docs" in artifacts["data-docs"]["data"]
    # The link opens this run's own validation page, not the Data Docs' index.
    assert "validations/" in artifacts["data-docs"]["data"]
    assert ".html" in artifacts["data-docs"]["data"]
    assert artifacts["variants"]["type"] == "table"
    assert float(artifacts["training-progress"]["data"]) == 100.0
    assert "deployed" in artifacts["run-summary"]["data"]


def test_a_burst_of_changes_gives_one_run_and_promotions_never_overlap(svc: Service) -> None:
    registry = _registry(svc)
    before = svc.runs()
    for i in range(20):  # 20 changes in ~4.5 s: each within the 1 s debounce of the last
        (svc.data / "5" / f"burst-{i:02d}.png").write_bytes(digit_image(5, 100 + i))
        time.sleep(0.225)
    final = data_hash(svc.data)
    runs = svc.settled_runs(len(before) + 1, RUN_TIMEOUT)
    new = runs[len(before) :]
    assert 1 <= len(new) <= 2, [r["name"] for r in new]
    assert all(r["state_type"] == "COMPLETED" for r in new), new
    assert registry.versions() == ["v0001", "v0002", "v0003"]
    production = registry.production()
    assert production is not None and production.data_hash == final

    # Concurrency limit 1: no two runs (hence no two promotions) ever overlapped in time.
    spans = [
        (datetime.fromisoformat(r["start_time"]), datetime.fromisoformat(r["end_time"]))
        for r in runs
        if r["start_time"] and r["end_time"]
    ]
    assert len(spans) == len(runs)
    assert not _overlaps(spans)
    deploys = [
        (datetime.fromisoformat(t["start_time"]), datetime.fromisoformat(t["end_time"]))
        for r in runs
        for t in svc.api.task_runs(r["id"])
        if t["name"].startswith("gate-and-deploy") and t["start_time"] and t["end_time"]
    ]
    assert len(deploys) >= 3 and not _overlaps(deploys)


def test_touching_files_without_changing_content_starts_nothing(svc: Service) -> None:
    count = len(svc.runs())
    future = time.time() + 60
    for path in sorted((svc.data / "0").iterdir())[:50]:
        os.utime(path, (future, future))
    same = svc.data / "0" / sorted(os.listdir(svc.data / "0"))[0]
    same.write_bytes(same.read_bytes())  # rewritten, identical bytes
    time.sleep(1.0 + 4.0)  # the debounce, then more than the watcher needs to decide
    assert len(svc.runs()) == count
    log = (ServicePaths(svc.project).log_file("watcher")).read_text()
    assert "no event (same data as the production model)" in log


def test_an_event_for_data_already_in_production_is_a_no_op(svc: Service) -> None:
    """A duplicate or late event (here sent by hand) must not retrain or redeploy."""
    registry = _registry(svc)
    production = registry.production()
    assert production is not None
    count = len(svc.runs())
    ws = open_workspace(svc.project / "params.yaml", svc.project)
    # Named explicitly, as the watcher's environment names it: in a full test session a
    # prefect_test_harness (the `prefect_backend` fixture) holds another PREFECT_API_URL
    # in Prefect's settings context of this process.
    emit_data_changed(
        ws,
        production.data_hash,
        production.data_hash,
        {"note": "duplicate"},
        api_url=svc.env["PREFECT_API_URL"],
    )
    runs = svc.settled_runs(count + 1, RUN_TIMEOUT, quiet_s=3.0)
    assert len(runs) == count + 1
    run = runs[-1]
    assert run["state_type"] == "COMPLETED", run
    assert run["name"] == short_hash(production.data_hash)
    tasks = {t["name"].rsplit("-", 1)[0] for t in svc.api.task_runs(run["id"])}
    assert tasks == {"check-production"}  # no snapshot, no DVC stage, no deploy
    summary = next(a for a in svc.api.artifacts(run["id"]) if a.get("key") == "run-summary")
    assert "nothing to do" in summary["data"]
    assert registry.production_version() == production.version
    assert len(registry.versions()) == int(production.version[1:])


def test_bad_data_through_the_trigger_fails_the_run_and_keeps_production(svc: Service) -> None:
    registry = _registry(svc)
    live = registry.production_version()
    sample = svc.data / "7" / sorted(os.listdir(svc.data / "7"))[0]
    before = Predictor.from_registry(registry).predict_files([sample])
    count = len(svc.runs())

    corrupt = svc.data / "3" / "corrupt.png"
    corrupt.write_bytes(digit_image(3, 999)[:40])  # a truncated PNG
    runs = svc.settled_runs(count + 1, RUN_TIMEOUT)
    assert len(runs) == count + 1
    failed = runs[-1]
    assert failed["state_type"] == "FAILED", failed
    assert "data validation failed" in failed["message"]
    assert "readable" in failed["message"]  # the failed expectation, by name
    assert registry.production_version() == live
    assert Predictor.from_registry(registry).predict_files([sample]) == before

    # Removing the bad file brings the data back to production's: nothing to run.
    corrupt.unlink()
    time.sleep(1.0 + 4.0)
    assert len(svc.runs()) == count + 1


def test_cron_schedule_follows_params_across_a_restart(svc: Service) -> None:
    def crons() -> list[str]:
        return [s["schedule"]["cron"] for s in svc.deployment_info()["schedules"]]

    assert crons() == ["0 3 * * *"]
    params = svc.project / "params.yaml"
    raw = yaml.safe_load(params.read_text())
    raw["schedule"]["cron"] = "30 4 * * 1"
    params.write_text(yaml.safe_dump(raw, sort_keys=False))

    stopped = cli(svc.project, svc.env, "down", timeout=120)
    assert stopped.returncode == 0, stopped.stderr
    assert read_state(ServicePaths(svc.project)) is None
    started = cli(svc.project, svc.env, "up", "--detach")
    assert started.returncode == 0, started.stdout + started.stderr

    assert crons() == ["30 4 * * 1"]
    assert svc.deployment_info()["paused"] is False
    status = cli(svc.project, svc.env, "status", "--json", timeout=60)
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert report["deployment"]["schedules"][0]["cron"] == "30 4 * * 1"
    assert report["deployment"]["concurrency_limit"] == 1
    assert report["deployment"]["triggers"][0]["expect"] == ["flywheel.data.changed"]
    assert report["production"]["version"] == "v0003"
    assert report["deployment"]["runs"][0]["state_type"] == "FAILED"
    text = cli(svc.project, svc.env, "status", timeout=60).stdout
    assert "cron '30 4 * * 1' UTC" in text and "production  v0003" in text
