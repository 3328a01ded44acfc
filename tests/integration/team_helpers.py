"""Team-mode test rig: PostgreSQL, a Prefect server on it, checkouts, workers, runs.

Each "machine" is a folder holding its own copy of the project (DVC cache, registry
mirror, flows/) and its own PREFECT_HOME; they share only the server's address and the
team remote, an S3-compatible server (moto) on loopback. The data lives on one machine
(``Team.data``, the watcher's): a change there is put on the remote and announced, and
the two worker machines, whose checkouts start with no data at all, pull the announced
version by hash and promote through the remote alias.
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

import pytest
import yaml
from tests.integration import postgres
from tests.integration.service_helpers import (
    SERVICE_PARAMS,
    digit_image,
    make_project,
    stop_group,
    wait_for,
)
from tests.moto_s3 import S3Server, aws_test_env

from flywheel.core.remote_section import RemoteConfig
from flywheel.core.workspace import open_workspace
from flywheel.datasets.hashing import data_hash
from flywheel.release.registry import ModelCard, open_registry
from flywheel.supervise.api import PrefectApi, run_summary
from flywheel.supervise.ports import free_port
from flywheel.supervise.prefect_server import api_url, server_command, server_env, wait_healthy
from flywheel.triggers.watcher import announce

PROJECT = Path(__file__).resolve().parents[2]
POOL = "team"
# The tiniest real runs (SERVICE_PARAMS) with a short debounce, and no cron: only the
# events under test start runs.
TEAM_PARAMS = {**SERVICE_PARAMS, "schedule": {"cron": "", "debounce_s": 1.0, "recheck_s": 5.0}}


def dump(remote: RemoteConfig) -> dict[str, Any]:
    return remote.model_dump(mode="json")


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
    and the flows a worker runs. Each dataset has a remote registry of its own."""
    project = make_project(root, overrides)
    shutil.copytree(
        PROJECT / "flows", project / "flows", ignore=shutil.ignore_patterns("__pycache__")
    )
    raw = yaml.safe_load((project / "params.yaml").read_text())
    raw.setdefault("data", {})["path"] = "dataY"
    raw.setdefault("paths", {})["registry"] = "registry/dataY"  # as `flywheel init` writes
    if raw.get("remote", {}).get("url"):
        raw["remote"]["url"] += "-dataY"
    (project / "paramsY.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    shutil.copytree(project / "data", project / "dataY")
    # Resolved as in a real clone, where params.resolved.yaml is committed: DVC reads every
    # dvc.yaml of the repository, the root one included, whichever dataset runs.
    for params in ("params.yaml", "paramsY.yaml"):
        open_workspace(project / params, project)
    return project


def clone(origin: Path, where: Path) -> Path:
    """A worker's checkout: the project without its data (a git clone has none)."""

    def no_data(folder: str, names: list[str]) -> list[str]:
        return [n for n in names if Path(folder) == origin and n in ("data", "dataY")]

    shutil.copytree(origin, where, symlinks=True, ignore=no_data)
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
    checkouts: dict[str, Path]  # the worker machines'
    workers: dict[str, Worker]
    data: Path  # the data (and watcher) machine's checkout
    remotes: dict[str, RemoteConfig]  # by params file

    def production(self, params: str) -> ModelCard | None:
        """Production of that dataset, as the remote alias names it."""
        mirror = self.data.parent / "mirrors" / params
        return open_registry(mirror, self.remotes[params]).production()


@contextlib.contextmanager
def team_up(root: Path) -> Iterator[Team]:
    """PostgreSQL, a Prefect server on it, the object store, both datasets' deployments on
    the pool, the data machine, and two worker machines (checkouts ``a`` and ``b``, no
    data) each running a worker; all stopped on exit."""
    pg = postgres.start_postgres(Path(tempfile.mkdtemp(prefix="flywheel-pg-")))
    workers: dict[str, Worker] = {}
    with contextlib.ExitStack() as stack:
        stack.callback(pg.stop)
        mp = stack.enter_context(pytest.MonkeyPatch.context())
        aws_test_env(mp)
        s3 = S3Server()
        s3.start()
        stack.callback(s3.stop)
        remote = RemoteConfig(url=f"s3://{s3.bucket()}/team", endpoint_url=s3.endpoint)
        server, api_url = start_server_on(root / "server-home", free_port(), pg.url)
        stack.callback(stop_group, server)
        env = {**os.environ, "PREFECT_API_URL": api_url, "PREFECT_LOGGING_LEVEL": "INFO"}
        origin = make_origin(root / "data" / "checkout", {**TEAM_PARAMS, "remote": dump(remote)})
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
            stack.callback(workers[n].stop)
            workers[n].start()
        api = PrefectApi(api_url)
        stack.callback(api.close)
        wait_for(lambda: len(online(api)) == 2, 120, "both workers online")
        remotes = {
            "params.yaml": remote,
            "paramsY.yaml": remote.model_copy(update={"url": remote.url + "-dataY"}),
        }
        yield Team(api, env, checkouts, workers, origin, remotes)


def online(api: PrefectApi) -> set[str]:
    return {w["name"] for w in api.workers(POOL) if w.get("status") == "ONLINE"}


def change(team: Team, folder: str, label: int, variant: int) -> str:
    """A new image in the data machine's ``folder``; the folder's new version."""
    (team.data / folder / str(label) / f"team-{variant:03d}.png").write_bytes(
        digit_image(label, variant)
    )
    return data_hash(team.data / folder)


def emit(team: Team, params: str, digest: str) -> None:
    """What the watcher on the data machine does: the version onto the remote, then the
    event (its own test runs the watcher itself)."""
    ws = open_workspace(team.data / params, team.data)
    announce(ws, digest, None, {}, api_url=team.env["PREFECT_API_URL"])
