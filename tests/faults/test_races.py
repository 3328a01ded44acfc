"""Runs of one project never overlap, whatever started them, and no race ships a model the
gate did not pass: two CLI runs at once, a CLI run that cannot wait long enough, a CLI run
while the service runs, and a burst of events from the watcher, by hand and from a shell.

Real processes throughout: `flywheel run` against a real Prefect server, `flywheel up`.
The audit is the registry's journal: every promotion it records carries the gate's
verdict, so 'ungated models shipped' is counted, not assumed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from itertools import combinations
from pathlib import Path

import pytest
import yaml
from tests.integration.service_helpers import (
    TINY_RUN_PARAMS,
    Service,
    cli,
    digit_image,
    make_project,
    wait_for,
)

from flywheel.core.faults import ENV, ONCE_ENV
from flywheel.core.layout import Layout
from flywheel.core.workspace import open_workspace
from flywheel.datasets.hashing import data_hash
from flywheel.pipeline.lock import read_holder
from flywheel.release.registry import Registry
from flywheel.supervise.api import PrefectApi
from flywheel.supervise.state import ServicePaths, pid_alive, read_state
from flywheel.triggers.events import emit_data_changed

pytestmark = [pytest.mark.slow]

PARAMS = {
    **TINY_RUN_PARAMS,
    "schedule": {"debounce_s": 1.0, "recheck_s": 5.0},
}
RUN_TIMEOUT = 600


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_project(tmp_path_factory.mktemp("races") / "project", PARAMS)


def _start(project: Path, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "flywheel.cli", *args],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=RUN_TIMEOUT)
    return proc.returncode, out, err


def _holder(project: Path) -> dict:
    return read_holder(Layout.run_lock(project))


def ungated_promotions(registry: Registry) -> list[dict]:
    """Promotions the journal does not show passing the gate (a restore is not one)."""
    return [
        e
        for e in registry.journal.events()
        if e["event"] == "promoted" and not e.get("restored") and not e.get("gate_passed")
    ]


def _add_images(project: Path, label: int, start: int, n: int = 10) -> None:
    for i in range(n):
        (project / "data" / str(label) / f"race-{start + i:03d}.png").write_bytes(
            digit_image(label, start + i)
        )


def test_two_cli_runs_at_once_never_overlap(project: Path, prefect_env: dict[str, str]) -> None:
    first = _start(project, prefect_env, "run", "--json")
    wait_for(lambda: _holder(project).get("pid") or first.poll() is not None, 300, "a holder")
    second = _start(project, prefect_env, "run", "--json")
    results = [_finish(first), _finish(second)]
    assert [code for code, _, _ in results] == [0, 0], [err[-2000:] for _, _, err in results]
    statuses = sorted(json.loads(out)["status"] for _, out, _ in results)
    assert statuses == ["deployed", "nothing to do"]
    assert "waiting for flow run" in results[1][2]  # the second one waited, by name
    registry = Registry(project / "registry")
    assert registry.versions() == ["v0001"]
    assert ungated_promotions(registry) == []


HOLD = (
    "import sys, time; from pathlib import Path; from flywheel.pipeline.lock import "
    "project_lock\nwith project_lock(Path(sys.argv[1]), what='flow run long-one', "
    "trigger='schedule', wait_s=0):\n    print('held', flush=True); time.sleep(600)"
)  # longer than the refused CLI run may take to reach the lock; the test kills it


def test_a_run_that_cannot_wait_is_refused_naming_the_holder(
    project: Path, prefect_env: dict[str, str]
) -> None:
    impatient = project / "impatient.yaml"
    raw = yaml.safe_load((project / "params.yaml").read_text())
    raw.setdefault("schedule", {})["wait_for_run_s"] = 1
    impatient.write_text(yaml.safe_dump(raw, sort_keys=False))
    # The holder: a process holding the project's lock as a run does (a run would hold it
    # as long, only less predictably).
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(project)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        refused = cli(project, prefect_env, "run", "--params", str(impatient), timeout=300)
    finally:
        holder.kill()
        holder.wait()
    assert refused.returncode == 5, refused.stderr[-2000:]
    last = refused.stderr.strip().splitlines()[-1]  # the CLI's one line, after Prefect's log
    assert last.startswith("error: ") and "is busy: flow run long-one" in last
    assert f"(pid {holder.pid}," in last and "by schedule" in last
    assert Registry(project / "registry").versions() == ["v0001"]  # nothing else happened


@pytest.fixture(scope="module")
def svc(project: Path, prefect_env: dict[str, str]) -> Iterator[Service]:
    # Every process of the service inherits an armed fault point; the marker file lets it
    # fire once, in whichever run reaches it first (see the first service test).
    marker = project.parent / "service-fault-fired"
    armed = {**prefect_env, ENV: "stage.train", ONCE_ENV: str(marker)}
    started = cli(project, armed, "up", "--detach")
    assert started.returncode == 0, started.stdout + started.stderr
    api = PrefectApi(prefect_env["PREFECT_API_URL"])
    try:
        yield Service(project, armed, api)
    finally:
        api.close()
        state = read_state(ServicePaths(project))
        cli(project, prefect_env, "down", timeout=120)
        for child in ((state or {}).get("children") or {}).values():
            if child.get("pid") and pid_alive(child["pid"]):
                os.killpg(child["pid"], signal.SIGKILL)


def test_a_service_run_killed_mid_stage_is_announced_again(svc: Service) -> None:
    """kill -9 of a run the service started (inside train): the runner marks it Crashed,
    the watcher announces the same data again, and the next run deploys it."""
    before = len(svc.runs())
    _add_images(svc.project, 2, 0)
    runs = svc.settled_runs(before + 2, RUN_TIMEOUT, quiet_s=8.0)
    crashed, retried = runs[before], runs[before + 1]
    assert (svc.project.parent / "service-fault-fired").exists()
    assert crashed["state_type"] == "CRASHED", crashed
    assert retried["state_type"] == "COMPLETED", retried
    assert retried["parameters"]["data_hash"] == crashed["parameters"]["data_hash"]
    assert len(runs) == before + 2
    registry = Registry(svc.project / "registry")
    production = registry.production()
    assert production is not None and production.data_hash == data_hash(svc.data)
    assert registry.verified(production.version) and ungated_promotions(registry) == []


def _running_service_run(svc: Service) -> dict | None:
    """The service's run, once it holds the project's lock (its name is in the holder)."""
    holder = _holder(svc.project)
    if not holder or not pid_alive(int(holder.get("pid", 0))):
        return None
    runs = [r for r in svc.runs() if r["state_type"] == "RUNNING"]
    return next((r for r in runs if f"flow run {r['name']} " in str(holder["what"])), None)


def test_a_cli_run_during_a_service_run_waits_for_it(svc: Service) -> None:
    # Production already has the data the shell runs left: `up` starts no run of its own.
    before = len(svc.runs())
    _add_images(svc.project, 6, 0)
    service_run = wait_for(lambda: _running_service_run(svc), 120, "the service's run")
    code, out, err = _finish(_start(svc.project, svc.env, "run", "--json"))
    assert code == 0, err[-2000:]
    assert f"waiting for flow run {service_run['name']}" in err
    runs = svc.settled_runs(before + 1, RUN_TIMEOUT)
    assert all(r["state_type"] == "COMPLETED" for r in runs[before:]), runs[before:]
    # The service deployed the new data; the shell's run, after it, had nothing to do.
    assert json.loads(out)["status"] == "nothing to do"
    registry = Registry(svc.project / "registry")
    production = registry.production()
    assert production is not None and production.data_hash == data_hash(svc.data)
    assert ungated_promotions(registry) == []


def _overlaps(spans: list[tuple[datetime, datetime]]) -> list[tuple]:
    return [(a, b) for a, b in combinations(sorted(spans), 2) if b[0] < a[1]]


def test_a_burst_of_events_from_everywhere_ships_only_gated_models(svc: Service) -> None:
    registry = Registry(svc.project / "registry")
    before = len(svc.runs())
    ws = open_workspace(svc.project / "params.yaml", svc.project)
    _add_images(svc.project, 8, 0)  # the watcher announces this
    shell = _start(svc.project, svc.env, "run", "--json")  # and a shell runs at once
    current = data_hash(svc.data)
    for i in range(3):  # duplicate and late events, by hand
        emit_data_changed(
            ws, current, None, {"note": f"burst {i}"}, api_url=svc.env["PREFECT_API_URL"]
        )
        time.sleep(0.2)
    code, _, err = _finish(shell)
    assert code == 0, err[-2000:]
    runs = svc.settled_runs(before + 4, RUN_TIMEOUT, quiet_s=5.0)
    new = runs[before:]
    assert all(r["state_type"] == "COMPLETED" for r in new), [
        (r["name"], r["state_name"]) for r in new
    ]
    production = registry.production()
    assert production is not None and production.data_hash == current
    assert registry.verified(production.version)
    assert ungated_promotions(registry) == []
    deploys = [
        (datetime.fromisoformat(t["start_time"]), datetime.fromisoformat(t["end_time"]))
        for r in runs
        for t in svc.api.task_runs(r["id"])
        if t["name"].startswith("gate-and-deploy") and t["start_time"] and t["end_time"]
    ]
    assert not _overlaps(deploys)
