"""`flywheel up --database URL` on a real PostgreSQL 15: Prefect migrates the empty
database on start, and a data change runs through the pipeline with every run, state and
artifact kept in PostgreSQL (not in SQLite under PREFECT_HOME)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration import postgres
from tests.integration.service_helpers import SERVICE_PARAMS, Service, cli, make_project

from flywheel.datasets.hashing import data_hash
from flywheel.pipeline.names import short_hash
from flywheel.supervise.api import PrefectApi
from flywheel.supervise.state import ServicePaths, pid_alive, read_state

pytestmark = [
    pytest.mark.slow,
    pytest.mark.team,
    pytest.mark.skipif(not postgres.available(), reason="PostgreSQL 15 is not installed"),
]

RUN_TIMEOUT = 300
PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pg_server() -> Iterator[postgres.Postgres]:
    # Not under pytest's tmp folder: that is private to root and the server runs as postgres.
    server = postgres.start_postgres(Path(tempfile.mkdtemp(prefix="flywheel-pg-")))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg(pg_server: postgres.Postgres) -> postgres.Postgres:
    # A database per test: the projects share a name, so on one database a test would find
    # the deployment (and the runs) an earlier test registered.
    return pg_server.with_database(f"prefect_{uuid.uuid4().hex[:8]}")


def test_up_on_postgres_runs_a_data_change(pg: postgres.Postgres, tmp_path: Path) -> None:
    project = make_project(tmp_path / "project", SERVICE_PARAMS)
    home = tmp_path / "prefect-home"
    env = {
        **{k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"},
        "PREFECT_HOME": str(home),
    }
    started = cli(project, env, "up", "--detach", "--port", "0", "--database", pg.url)
    assert started.returncode == 0, started.stdout + started.stderr
    state = read_state(ServicePaths(project))
    assert state is not None and state["database"] == "postgresql"
    assert pg.password not in json.dumps(state)  # the URL's password is not in the state file
    svc = Service(project, env, PrefectApi(state["api_url"]))
    try:
        # Migrated on start: Prefect's schema and its alembic head are in PostgreSQL.
        assert pg.psql("SELECT version_num FROM alembic_version", pg.database)
        # The data is unknown to production: the watcher announces it, a run trains on it.
        (run,) = svc.settled_runs(1, RUN_TIMEOUT)
        assert run["state_type"] == "COMPLETED", run
        assert run["name"] == short_hash(data_hash(project / "data"))
        stored = pg.psql(f"SELECT state_type FROM flow_run WHERE id = '{run['id']}'", pg.database)
        assert stored == "COMPLETED"
        assert not list(home.glob("*.db")), "the server used SQLite after all"
        status = cli(project, {**env, "PREFECT_API_URL": state["api_url"]}, "status", "--json")
        report = json.loads(status.stdout)
        assert report["up"]["database"] == "postgresql"
        assert report["deployment"]["runs"][0]["state_name"] == "Completed"
        text = cli(project, {**env, "PREFECT_API_URL": state["api_url"]}, "status").stdout
        assert "healthy, postgresql" in text
    finally:
        svc.api.close()
        cli(project, env, "down", timeout=120)
        for child in (state.get("children") or {}).values():
            if child.get("pid") and pid_alive(child["pid"]):
                os.killpg(child["pid"], signal.SIGKILL)


def test_up_names_an_unreachable_database(pg: postgres.Postgres, tmp_path: Path) -> None:
    project = make_project(tmp_path / "project", SERVICE_PARAMS)
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    dead = pg.url.replace(f":{pg.port}/", ":1/")
    result = cli(project, env, "up", "--port", "0", "--database", dead, timeout=60)
    assert result.returncode != 0
    assert "PostgreSQL at 127.0.0.1:1 does not accept connections" in result.stderr
    assert "Traceback" not in result.stderr
    bad = cli(project, env, "up", "--database", "mysql://x@h/db", timeout=60)
    assert bad.returncode != 0 and "postgresql+asyncpg://" in bad.stderr


def test_up_with_a_pool_runs_on_its_own_worker(pg: postgres.Postgres, tmp_path: Path) -> None:
    """`up --pool` on one machine: the deployment on the pool, a worker child runs it."""
    project = make_project(tmp_path / "project", SERVICE_PARAMS)
    shutil.copytree(
        PROJECT / "flows", project / "flows", ignore=shutil.ignore_patterns("__pycache__")
    )
    env = {
        **{k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"},
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
    }
    started = cli(
        project,
        env,
        "up",
        "--detach",
        "--port",
        "0",
        "--database",
        pg.url,
        "--pool",
        "solo",
        "--worker-name",
        "solo-worker",
    )
    assert started.returncode == 0, started.stdout + started.stderr
    state = read_state(ServicePaths(project))
    assert state is not None and set(state["children"]) >= {"server", "register", "worker"}
    assert "serve" not in state["children"]
    svc = Service(project, env, PrefectApi(state["api_url"]))
    try:
        (run,) = svc.settled_runs(1, RUN_TIMEOUT)
        assert run["state_type"] == "COMPLETED", run
        assert (run["worker"], run["work_pool"]) == ("solo-worker", "solo")
        text = cli(project, {**env, "PREFECT_API_URL": state["api_url"]}, "status").stdout
        assert "work pool   solo: solo-worker (online)" in text
        assert "on solo-worker" in text
    finally:
        svc.api.close()
        cli(project, env, "down", timeout=120)
        for child in (state.get("children") or {}).values():
            if child.get("pid") and pid_alive(child["pid"]):
                os.killpg(child["pid"], signal.SIGKILL)
