"""Team-mode test rig: PostgreSQL, a Prefect server on it, checkouts, workers, runs.

Each "machine" is a folder holding its own copy of the project (a clone: git, DVC cache,
data, registry, flows/) and its own PREFECT_HOME; the only thing they share is the
server's address. Until the shared object store lands, a data change is made in every
checkout alike, as a pull from the remote would.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from tests.integration import postgres
from tests.integration.service_helpers import (
    SERVICE_PARAMS,
    digit_image,
    make_project,
    stop_group,
    wait_for,
)

from flywheel.core.workspace import open_workspace
from flywheel.datasets.hashing import data_hash
from flywheel.supervise.api import PrefectApi, run_summary
from flywheel.supervise.ports import free_port
from flywheel.supervise.prefect_server import api_url, server_command, server_env, wait_healthy
from flywheel.triggers.events import emit_data_changed

PROJECT = Path(__file__).resolve().parents[2]
POOL = "team"
# The tiniest real runs (SERVICE_PARAMS) with a short debounce, and no cron: only the
# events under test start runs.
TEAM_PARAMS = {**SERVICE_PARAMS, "schedule": {"cron": "", "debounce_s": 1.0, "recheck_s": 5.0}}


def start_server_on(home: Path, port: int, database: str) -> tuple[subprocess.Popen[bytes], str]:
    home.mkdir(parents=True, exist_ok=True)
    log = home / "server.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            server_command("127.0.0.1", port),
            env=server_env(home, "127.0.0.1", port, database),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    api = api_url("127.0.0.1", port)
    try:
        wait_healthy(api, 240, proc, log)
    except BaseException:
        stop_group(proc)
        raise
    return proc, api


def make_origin(root: Path, overrides: dict[str, dict[str, Any]]) -> Path:
    """The project with two datasets: ``data`` (params.yaml) and ``dataY`` (paramsY.yaml),
    and the flows a worker runs."""
    project = make_project(root, overrides)
    shutil.copytree(
        PROJECT / "flows", project / "flows", ignore=shutil.ignore_patterns("__pycache__")
    )
    raw = yaml.safe_load((project / "params.yaml").read_text())
    raw.setdefault("data", {})["path"] = "dataY"
    (project / "paramsY.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    shutil.copytree(project / "data", project / "dataY")
    # Resolved as in a real clone, where params.resolved.yaml is committed: DVC reads every
    # dvc.yaml of the repository, the root one included, whichever dataset runs.
    for params in ("params.yaml", "paramsY.yaml"):
        open_workspace(project / params, project)
    return project


def clone(origin: Path, where: Path) -> Path:
    shutil.copytree(origin, where, symlinks=True)
    return where


@dataclass
class Worker:
    name: str
    checkout: Path
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.checkout.parent / f"{self.name}.log"

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "flywheel.cli",
                    "worker",
                    "--pool",
                    POOL,
                    "--name",
                    self.name,
                ],
                cwd=self.checkout,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            # Prefect's worker shuts down on SIGINT; whatever is left goes with its group.
            self.proc.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=20)
            stop_group(self.proc, 5)


def deployment_runs(api: PrefectApi, name: str) -> list[dict[str, Any]]:
    deployment = api.deployment(name)
    assert deployment is not None, f"{name} is not registered"
    return [run_summary(r) for r in reversed(api.flow_runs(str(deployment["id"]), limit=100))]


def raw_run(api: PrefectApi, run_id: str) -> dict[str, Any]:
    response = api._http.get(f"/flow_runs/{run_id}")
    response.raise_for_status()
    return dict(response.json())


def interval(run: dict[str, Any]) -> tuple[datetime, datetime]:
    return datetime.fromisoformat(run["start_time"]), datetime.fromisoformat(run["end_time"])


def limit_slots(api: PrefectApi, name: str) -> int:
    response = api._http.get(f"/v2/concurrency_limits/{name}")
    response.raise_for_status()
    return int(response.json()["active_slots"])


def wait_settled(api: PrefectApi, name: str, count: int, timeout: float) -> list[dict[str, Any]]:
    terminal = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}

    def done() -> list[dict[str, Any]] | None:
        runs = deployment_runs(api, name)
        if len(runs) >= count and all(r["state_type"] in terminal for r in runs):
            return runs
        return None

    return list(wait_for(done, timeout, f"{count} settled runs of {name}", interval=2.0))


@dataclass
class Team:
    api: PrefectApi
    env: dict[str, str]
    checkouts: dict[str, Path]
    workers: dict[str, Worker]


@contextlib.contextmanager
def team_up(root: Path) -> Iterator[Team]:
    """PostgreSQL, a Prefect server on it, both datasets' deployments on the pool, and two
    machines (checkouts ``a`` and ``b``) each running a worker; all stopped on exit."""
    pg = postgres.start_postgres(Path(tempfile.mkdtemp(prefix="flywheel-pg-")))
    server = None
    workers: dict[str, Worker] = {}
    try:
        server, api_url = start_server_on(root / "server-home", free_port(), pg.url)
        env = {**os.environ, "PREFECT_API_URL": api_url, "PREFECT_LOGGING_LEVEL": "INFO"}
        origin = make_origin(root / "origin", TEAM_PARAMS)
        checkouts = {n: clone(origin, root / n / "checkout") for n in ("a", "b")}
        for params in ("params.yaml", "paramsY.yaml"):
            subprocess.run(
                [sys.executable, "-m", "flows.pool", "--pool", POOL, "--params", params, "--once"],
                cwd=checkouts["a"],
                env={**env, "PREFECT_HOME": str(root / "a" / "home")},
                check=True,
                timeout=300,
            )
        for n, checkout in checkouts.items():
            workers[n] = Worker(
                f"worker-{n}", checkout, {**env, "PREFECT_HOME": str(root / n / "home")}
            )
            workers[n].start()
        api = PrefectApi(api_url)
        wait_for(lambda: len(online(api)) == 2, 120, "both workers online")
        yield Team(api, env, checkouts, workers)
        api.close()
    finally:
        for worker in workers.values():
            worker.stop()
        if server is not None:
            stop_group(server)
        pg.stop()


def online(api: PrefectApi) -> set[str]:
    return {w["name"] for w in api.workers(POOL) if w.get("status") == "ONLINE"}


def change(team: Team, folder: str, label: int, variant: int) -> str:
    """The same new image in every checkout (what a pull from the remote would do)."""
    hashes = set()
    for checkout in team.checkouts.values():
        (checkout / folder / str(label) / f"team-{variant:03d}.png").write_bytes(
            digit_image(label, variant)
        )
        hashes.add(data_hash(checkout / folder))
    (only,) = hashes
    return only


def emit(team: Team, params: str, digest: str) -> None:
    ws = open_workspace(team.checkouts["a"] / params, team.checkouts["a"])
    emit_data_changed(ws, digest, None, {}, api_url=team.env["PREFECT_API_URL"])
