"""Team mode end to end: a Prefect server on PostgreSQL, the retrain deployments of two
datasets on a process work pool, two workers each in its own checkout.

    parallel   X and Y change at once  -> one run each, on different workers, overlapping
    burst      two events for X at once -> runs one at a time, never overlapping
    crash      the machine running X dies (worker and run killed -9) -> the run is marked
               Crashed by the heartbeat automation, the dataset's slot comes back, and the
               watcher (on the data machine) announces the version again; it is promoted

The data lives on a third machine; the workers' checkouts start without any, pull each
announced version from the object store by hash and promote through the remote alias
(tests.integration.team_helpers).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from itertools import combinations

import pytest
from tests.integration import postgres
from tests.integration.service_helpers import stop_group, wait_for
from tests.integration.team_helpers import (
    POOL,
    Team,
    change,
    deployment_runs,
    emit,
    interval,
    limit_slots,
    raw_run,
    team_up,
    wait_settled,
)

from flywheel.datasets.hashing import data_hash
from flywheel.pipeline.names import dataset_limit

pytestmark = [
    pytest.mark.slow,
    pytest.mark.team,
    pytest.mark.skipif(not postgres.available(), reason="PostgreSQL 15 is not installed"),
]

X, Y = "flywheel-pipeline/retrain", "flywheel-pipeline/retrain-paramsY"
RUN_TIMEOUT = 420


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Team]:
    with team_up(tmp_path_factory.mktemp("team")) as running:
        yield running


def _overlap_s(a: dict, b: dict) -> float:
    (a0, a1), (b0, b1) = interval(a), interval(b)
    return (min(a1, b1) - max(a0, b0)).total_seconds()


def test_two_datasets_run_in_parallel_on_two_workers(team: Team) -> None:
    hx, hy = change(team, "data", 1, 0), change(team, "dataY", 2, 0)
    emit(team, "params.yaml", hx)
    emit(team, "paramsY.yaml", hy)
    (rx,) = wait_settled(team.api, X, 1, RUN_TIMEOUT)
    (ry,) = wait_settled(team.api, Y, 1, RUN_TIMEOUT)
    assert rx["state_type"] == ry["state_type"] == "COMPLETED", (rx, ry)
    assert rx["work_pool"] == ry["work_pool"] == POOL
    assert {rx["worker"], ry["worker"]} == {"worker-a", "worker-b"}
    assert _overlap_s(rx, ry) > 0, "the two datasets ran one after the other"
    # Each worker pulled its version and promoted it through its dataset's remote alias.
    for params, digest in (("params.yaml", hx), ("paramsY.yaml", hy)):
        card = team.production(params)
        assert card is not None and card.data_hash == digest
    # The workers' checkouts started with no data: each now holds the version it ran.
    assert data_hash(team.checkouts[rx["worker"][-1]] / "data") == hx
    assert data_hash(team.checkouts[ry["worker"][-1]] / "dataY") == hy
    params = raw_run(team.api, rx["id"])["parameters"]
    assert params["dataset_limit"] == dataset_limit("data") and params["data_hash"] == hx


def test_a_burst_on_one_dataset_runs_one_at_a_time(team: Team) -> None:
    before = len(deployment_runs(team.api, X))
    for i in range(1, 3):  # each version announced as it is made, as the watcher would
        emit(team, "params.yaml", change(team, "data", 4, i))
    runs = wait_settled(team.api, X, before + 2, 2 * RUN_TIMEOUT)[before:]
    assert [r["state_type"] for r in runs] == ["COMPLETED"] * 2, runs
    for a, b in combinations(runs, 2):
        assert _overlap_s(a, b) <= 0, f"{a['name']} and {b['name']} overlapped"
    assert limit_slots(team.api, dataset_limit("data")) == 0


def test_a_dead_worker_machine_crashes_its_run_and_the_version_is_retried(team: Team) -> None:
    # Only worker a takes work; the data machine runs the watcher (the retrying component).
    team.workers["b"].stop()
    assert team.workers["b"].proc is not None and team.workers["b"].proc.poll() is not None
    before = len(deployment_runs(team.api, X))
    digest = change(team, "data", 6, 9)
    watcher = subprocess.Popen(
        [sys.executable, "-m", "flywheel.triggers.watcher", "--project", str(team.data)],
        cwd=team.data,
        env={**team.env, "PREFECT_HOME": str(team.data.parent / "home")},
        stdout=(team.data.parent / "watcher.log").open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        run = wait_for(
            lambda: next(
                (r for r in deployment_runs(team.api, X)[before:] if r["state_type"] == "RUNNING"),
                None,
            ),
            RUN_TIMEOUT,
            "worker-a to start the run",
        )
        assert run["worker"] == "worker-a"
        wait_for(lambda: limit_slots(team.api, dataset_limit("data")) == 1, 60, "the slot held")
        # The machine dies: its worker and the run's own process (which a worker's death
        # alone would leave running, in its own session).
        pid = raw_run(team.api, run["id"])["infrastructure_pid"]
        os.killpg(team.workers["a"].proc.pid, signal.SIGKILL)  # type: ignore[union-attr]
        os.kill(int(pid), signal.SIGKILL)
        team.workers["b"].start()
        crashed = wait_for(
            lambda: (r := raw_run(team.api, run["id"]))["state"]["type"] == "CRASHED" and r,
            300,
            "the heartbeat automation to crash the run",
            3,
        )
        assert "heartbeat" in crashed["state"]["message"]
        runs = wait_settled(team.api, X, before + 2, 2 * RUN_TIMEOUT)[before:]
        retried = [
            r for r in runs if r["id"] != run["id"] and r["parameters"].get("data_hash") == digest
        ]
        assert retried and retried[-1]["state_type"] == "COMPLETED", runs
        assert retried[-1]["worker"] == "worker-b"
        card = team.production("params.yaml")
        assert card is not None and card.data_hash == digest
        assert limit_slots(team.api, dataset_limit("data")) == 0
    finally:
        stop_group(watcher)
