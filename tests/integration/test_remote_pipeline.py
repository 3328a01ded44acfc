"""Team mode end to end on a real S3-compatible server (moto on loopback): machine A runs
the real flow and promotes; machine B, a fresh clone with no data and an empty cache,
pulls exactly A's data version and restores every stage from the run cache; the model's
reference profile reaches every mirror with the model."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from tests.integration.remote_helpers import origin_and_clone, run_flow
from tests.moto_s3 import S3Server

from flywheel.core.errors import RemoteUnavailable
from flywheel.core.remote_section import RemoteConfig
from flywheel.core.workspace import open_workspace
from flywheel.monitor.reference import load_reference
from flywheel.pipeline import steps
from flywheel.release.registry import open_registry
from flywheel.remote.objects import ObjectStore
from flywheel.remote.status import remote_status

pytestmark = [pytest.mark.slow]


def test_machine_b_skips_every_stage_from_the_remote_run_cache(
    tmp_path: Path, remote: RemoteConfig, prefect_backend: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    a, b = origin_and_clone(tmp_path, remote)
    started = time.perf_counter()
    first = run_flow(a)
    a_seconds = time.perf_counter() - started
    assert first["deploy"]["status"] == "deployed" and first["deploy"]["version"] == "v0001"
    assert all(s["ran"] and not s["restored"] for s in first["stages"].values())
    store = ObjectStore(remote)
    assert store.keys(store.key("dvc", "runs") + "/", "t")  # the run cache is up there
    assert store.etag(store.key("registry", "production.json"), "t")

    # B is told about A's data version (the event): it pulls exactly that version, finds
    # it already in production with the same params, and has nothing to do.
    told = run_flow(b, data_hash=first["data_hash"])
    assert told["nothing_to_do"] and told["data_hash"] == first["data_hash"]
    assert not any(s["ran"] for s in told["stages"].values())

    # C clones A after A committed its DVC files (git pull, `flywheel run`): it pulls the
    # recorded version, validates it itself (validate's report is not cacheable, so never
    # in the run cache) and restores every later stage from what A pushed.
    git = ["git", "-c", "user.email=ci@localhost", "-c", "user.name=ci"]
    subprocess.run(["git", "add", "data.dvc", "dvc.lock", ".gitignore"], cwd=a, check=True)
    subprocess.run([*git, "commit", "-qm", "run"], cwd=a, check=True)
    c = tmp_path / "c"
    subprocess.run(["git", "clone", "-q", str(a), str(c)], check=True)
    started = time.perf_counter()
    second = run_flow(c)
    c_seconds = time.perf_counter() - started
    assert second["data_hash"] == first["data_hash"]
    stages = second["stages"]
    assert stages.pop("validate")["ran"]
    assert all(s["restored"] for s in stages.values()), stages
    assert second["deploy"]["status"] == "unchanged" and second["deploy"]["version"] == "v0001"
    c_registry = open_registry(c / "registry", remote)
    assert c_registry.production_version() == "v0001"
    a_card = open_registry(a / "registry", remote).card("v0001")
    assert c_registry.verify("v0001").sha256 == a_card.sha256
    # The reference profile went up with the model (before its card): C's mirror has it
    # although C never deployed, so a monitor on C compares against A's profile.
    assert store.etag(store.key("registry", "versions", "v0001", "reference.json"), "t")
    reference = load_reference(c_registry.version_dir("v0001"))
    assert reference is not None and reference["model_version"] == "v0001"
    assert reference == load_reference(a / "registry" / "versions" / "v0001")
    print(f"A cold {a_seconds:.1f}s, C from the run cache {c_seconds:.1f}s")


def test_store_dying_mid_push_fails_cleanly_and_rerun_completes(
    tmp_path: Path,
    remote: RemoteConfig,
    s3_server: S3Server,
    prefect_backend: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The store dies after the push's third object write: the run fails with the one-line
    error, nothing is registered, and a rerun pushes the rest and promotes."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    a, _ = origin_and_clone(tmp_path, remote)
    real_push = steps.push

    def store_dies(ws: object) -> int:
        s3_server.die_after_writes(3)
        return real_push(ws)  # type: ignore[arg-type]

    monkeypatch.setattr(steps, "push", store_dies)
    try:
        with pytest.raises(RemoteUnavailable, match=r"cannot reach the DVC remote s3://"):
            run_flow(a)
        assert s3_server.died.wait(30)  # it died mid-push, not before or after it
    finally:
        s3_server.start()
    registry = open_registry(a / "registry", remote)
    assert registry.versions() == [] and registry.production_version() is None
    monkeypatch.setattr(steps, "push", real_push)
    again = run_flow(a)
    assert not any(s["ran"] for s in again["stages"].values())  # the local cache had them
    assert again["deploy"]["status"] == "deployed" and registry.production_version() == "v0001"
    status = remote_status(open_workspace(project=a))
    assert status["dvc"]["not_pushed"] == [] and status["dvc"]["run_cache"]["not_pushed"] == 0
