"""kill -9 at named points of a real run, deploy, rollback, feedback write and watcher save,
then the next run (or restart) with no manual step: production is a gated, verified model,
no data is lost, no version is stranded, leftovers are cleaned, DVC's files are readable
and `dvc status` is clean.

Real processes throughout: `flywheel run` against a real Prefect server, `flywheel serve`,
the watcher. Each armed run SIGKILLs itself at its fault point (FLYWHEEL_FAULT, see
flywheel.core.faults), exactly as `kill -9` would. The tests share one project and run in
file order; each fault's recovery is the next run, which is itself killed at the next
point, so one pipeline's worth of training covers every point of a first run.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from tests.faults.kill_helpers import (
    _killed,
    _record,
    _run,
    _serve,
    assert_settled,
    leftovers,
    production_gated,
)
from tests.integration.service_helpers import (
    TINY_RUN_PARAMS,
    assert_dvc_status_clean,
    digit_image,
    make_project,
    wait_for,
)

from flywheel.core.faults import ENV
from flywheel.datasets.hashing import data_hash
from flywheel.pipeline.dvc import recorded_hash
from flywheel.release.registry import Registry
from flywheel.supervise.ports import free_port

pytestmark = [pytest.mark.slow]

# Tiny but real: every stage runs; the gate refuses only a broken model.
PARAMS = TINY_RUN_PARAMS

# A first run, killed at every point in order; each run is the previous one's recovery.
# (Kills inside DVC's own writes of data.dvc and dvc.lock: tests/unit/pipeline/
# test_dvcfiles.py and tests/integration/test_dvc_stage_runner.py, on real repositories.)
FIRST_RUN = (
    "run.after_snapshot",
    "stage.validate",
    "stage.preprocess",
    "stage.train",
    "stage.export",
    "stage.compress",
    "stage.evaluate",
    "registry.register",  # a half-written version folder
    "deploy.before_alias",  # registered, never promoted
    "registry.alias_write",  # inside the alias write
    "deploy.post_check",  # promoted, never checked
)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_project(tmp_path_factory.mktemp("kills") / "project", PARAMS)


def test_every_kill_point_of_a_first_run_is_recovered_by_the_next(
    project: Path, prefect_env: dict[str, str]
) -> None:
    registry = Registry(project / "registry")
    files = sorted(p.relative_to(project) for p in (project / "data").rglob("*.png"))
    for point in FIRST_RUN:
        _killed(_run(project, prefect_env, "run", fault=point), point)
        assert production_gated(registry) in (None, "v0001"), point
    record = _record(_run(project, prefect_env, "run", "--json"))
    # Everything was done before the last kill: this run only finished the check.
    assert record["status"] == "nothing to do", record
    assert assert_settled(project) == "v0001"
    assert registry.versions() == ["v0001"]  # one model, registered once
    assert sorted(p.relative_to(project) for p in (project / "data").rglob("*.png")) == files


def test_kills_around_the_alias_move_keep_the_old_production_then_promote(
    project: Path, prefect_env: dict[str, str]
) -> None:
    registry = Registry(project / "registry")
    for i in range(10):
        (project / "data" / "3" / f"new-{i:02d}.png").write_bytes(digit_image(3, i))
    # (A kill inside the alias write is in the first run's chain.)
    _killed(_run(project, prefect_env, "run", fault="deploy.before_alias"), "before alias")
    assert production_gated(registry) == "v0001"
    record = _record(_run(project, prefect_env, "run", "--json"))
    # Not 'already registered (and since rolled back)': the stranded version is resumed.
    assert record["deploy"]["status"] == "deployed", record["deploy"]
    assert record["deploy"]["version"] == "v0002"
    assert assert_settled(project) == "v0002"
    assert registry.versions() == ["v0001", "v0002"]


def test_a_killed_rollback_is_finished_by_the_next_run(
    project: Path, prefect_env: dict[str, str]
) -> None:
    registry = Registry(project / "registry")
    _killed(_run(project, prefect_env, "rollback", fault="registry.alias_write"), "rollback")
    assert production_gated(registry) == "v0002"  # the alias never moved
    record = _record(_run(project, prefect_env, "run", "--json"))
    # The rollback is finished; the rolled-back model is not redeployed on the same data.
    assert record["status"] == "nothing to do", record
    assert "retired" in record["deploy"]["reason"]
    assert registry.production_version() == "v0001"
    assert registry.status("v0002", "v0001") == "retired"
    assert leftovers(project) == []


def test_unreadable_dvc_files_are_repaired_without_recomputing(
    project: Path, prefect_env: dict[str, str]
) -> None:
    """Files written before the atomic writes (or by hand): half a dvc.lock, an empty
    data.dvc. The next run moves them aside, re-records the data once it validates again,
    and restores every stage from DVC's run cache."""
    lock = project / "dvc.lock"
    text = lock.read_text()
    # Torn inside its first quoted scalar, so no YAML parser can read it (a cut at an
    # arbitrary byte may still parse, as a shorter lock: DVC then re-checks those stages).
    lock.write_text(text[: text.index("'") + 2])
    (project / "data.dvc").write_text("")
    record = _record(_run(project, prefect_env, "run", "--json"))
    assert record["status"] in ("nothing to do", "unchanged"), record
    # validate has an uncached output (its report), so DVC keeps no run cache for it.
    assert [s for s, r in record["stages"].items() if not r.get("restored")] == ["validate"]
    assert list(project.glob("dvc.lock.corrupt-*")) and list(project.glob("data.dvc.corrupt-*"))
    assert recorded_hash(project / "data.dvc") == data_hash(project / "data")
    assert_dvc_status_clean(project)


def test_a_corrupt_alias_is_one_line_with_the_fix_and_rollback_restores(
    project: Path, prefect_env: dict[str, str]
) -> None:
    registry = Registry(project / "registry")
    registry.alias_path.write_text('{"version": "v00')
    listed = _run(project, prefect_env, "models")
    assert listed.returncode == 1
    assert "Traceback" not in listed.stderr
    assert "production.json is corrupt" in listed.stderr and "flywheel rollback" in listed.stderr
    restored = _run(project, prefect_env, "rollback")
    assert restored.returncode == 0, restored.stderr
    assert registry.production_version() == "v0001"
    assert "production is now v0001" in restored.stdout


def test_a_kill_inside_a_feedback_write_loses_nothing_acknowledged(
    project: Path, prefect_env: dict[str, str]
) -> None:
    import base64

    inbox = project / "feedback"
    port = free_port()
    body = {"instance": {"b64": base64.b64encode(digit_image(7, 3)).decode()}, "label": "7"}
    server = _serve(project, {**prefect_env, ENV: "feedback.write"}, port)
    try:
        with pytest.raises(httpx.HTTPError):  # the server died mid-write: no 201 came back
            httpx.post(f"http://127.0.0.1:{port}/v1/feedback", json=body, timeout=30)
        assert server.wait(30) == -9
    finally:
        if server.poll() is None:
            server.kill()
    # Never acknowledged, never committed: the instance file (the commit point) is absent.
    assert list(inbox.rglob("*.png")) == []
    assert [p for p in leftovers(project) if p.is_relative_to(inbox)] != []
    server = _serve(project, prefect_env, port)  # the restart serves production again
    try:
        saved = httpx.post(f"http://127.0.0.1:{port}/v1/feedback", json=body, timeout=30)
        assert saved.status_code == 201, saved.text
    finally:
        server.terminate()
        server.wait(30)
    assert len(list(inbox.rglob("*.png"))) == 1
    _record(_run(project, prefect_env, "run", "--json"))  # the next run sweeps the rest
    assert leftovers(project) == []
    assert len(list(inbox.rglob("*.png"))) == 1


def test_a_kill_inside_the_watcher_state_save_announces_again_on_restart(
    project: Path, prefect_env: dict[str, str]
) -> None:
    """The event went out, the record of it did not: the restarted watcher announces the
    same data again (a duplicate the run answers with 'nothing to do'), never silence."""
    from flywheel.supervise.api import PrefectApi
    from flywheel.supervise.state import ServicePaths
    from flywheel.triggers.events import DATA_CHANGED

    state = ServicePaths(project).watcher_state("default")
    current = data_hash(project / "data")  # not production's (v0001 is older): news
    assert Registry(project / "registry").production().data_hash != current  # type: ignore[union-attr]
    api = PrefectApi(prefect_env["PREFECT_API_URL"])

    def announced() -> int:
        events = api.events(DATA_CHANGED, limit=50)
        return sum(e["payload"].get("data_hash") == current for e in events)

    argv = [sys.executable, "-m", "flywheel.triggers.watcher", "--project", str(project)]
    env = {**prefect_env, "FLYWHEEL_LOG_LEVEL": "INFO"}
    watcher = subprocess.Popen(argv, cwd=project, env={**env, ENV: "watcher.state_save"})
    assert watcher.wait(120) == -9
    assert not state.exists() or current not in state.read_text()
    assert any(p.parent == state.parent for p in leftovers(project))
    # The server stores events in the background: on a loaded machine that takes a while.
    wait_for(lambda: announced() >= 1, 120, "the first event on the server")
    watcher = subprocess.Popen(argv, cwd=project, env=env)
    try:
        wait_for(lambda: state.is_file() and current in state.read_text(), 120, "state saved")
        wait_for(lambda: announced() >= 2, 120, "the event announced again")
    finally:
        watcher.terminate()
        watcher.wait(30)
    api.close()
    assert leftovers(project) == []  # the restarted watcher swept what the killed one left
