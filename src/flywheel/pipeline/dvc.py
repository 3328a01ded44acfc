"""DVC as the pipeline sees it: data snapshots, stage status and single-stage reproduction.

Everything goes through DVC's Python API in this process. A stage's body is the same
function ``flywheel stage <name>`` (the stage's ``cmd`` in dvc.yaml) calls, run here rather
than in a fresh interpreter: a new process per stage would re-import torch and Lightning
six times per run, which cost more than the stages themselves on small data. Around the
body, :func:`reproduce` does what ``dvc repro --single-item`` does around its subprocess, with
DVC's own objects: skip an unchanged stage, restore from the run cache, remove stale outputs,
hash and cache the new ones, write ``dvc.lock``. ``dvc repro`` from a shell stays equivalent.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from flywheel.core.atomic import atomic_write_bytes
from flywheel.core.errors import DataChangedError, DataError, FlywheelError
from flywheel.core.faults import fault_point
from flywheel.datasets.hashing import data_hash
from flywheel.pipeline.dvcrepo import DvcBusy as DvcBusy
from flywheel.pipeline.dvcrepo import open_repo

if TYPE_CHECKING:
    from dvc.stage import Stage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StageRun:
    stage: str
    ran: bool
    seconds: float
    output: str

    @property
    def restored(self) -> bool:
        """Outputs checked out from DVC's run cache instead of computed."""
        return "restored from DVC's run cache" in self.output


def init_repository(root: Path, author: str = "flywheel") -> None:
    """Make ``root`` a git + DVC project (analytics off), as a new Flywheel project needs;
    tests and benchmarks build their throwaway projects with it."""
    for cmd in (
        ["git", "init", "-q"],
        ["git", "config", "user.email", f"{author}@localhost"],
        ["git", "config", "user.name", author],
        [sys.executable, "-m", "dvc", "init", "-q"],
        [sys.executable, "-m", "dvc", "config", "core.analytics", "false"],
    ):
        proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise FlywheelError(f"{' '.join(cmd[-3:])} failed in {root}: {proc.stderr.strip()}")


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def dvc_file_of(project: Path, data: Path) -> Path | None:
    """The ``.dvc`` file that records ``data``, or None for data outside the project."""
    if not _inside(data, project):
        return None
    return project / f"{os.path.relpath(data.resolve(), project)}.dvc"


def record_data(project: Path, data: Path, validated: str) -> Path | None:
    """Record ``data`` with ``dvc add`` once it passed validation as ``validated`` (its
    hash); returns the ``.dvc`` file (None for data outside the project). If the folder
    changed since, the ``.dvc`` file keeps what it recorded before and the run stops:
    a ``.dvc`` file only ever records validated data."""
    dvc_file = dvc_file_of(project, data)
    if dvc_file is None:
        log.warning("%s is outside the project: hashed but not versioned by DVC", data)
        return None
    if recorded_version(project, data) == (validated, dvc_file):
        return dvc_file  # recorded and cached already: skip dvc add's re-hashing
    before = dvc_file.read_bytes() if dvc_file.is_file() else None
    rel = os.path.relpath(data.resolve(), project)
    from dvc.output import OutputAlreadyTrackedError

    with open_repo(project) as repo:
        try:
            repo.add(rel)
        except OutputAlreadyTrackedError:
            raise DataError(
                f"{rel} is committed to git, so DVC cannot version it: run `git rm -r --cached "
                f"{rel} && git commit -m 'data to DVC'`, then run again"
            ) from None
    recorded = recorded_hash(dvc_file)
    if recorded != validated:
        if before is None:
            dvc_file.unlink()
        else:
            atomic_write_bytes(dvc_file, before)
        raise DataChangedError(
            f"{data} changed after it was validated ({validated[:8]}, now {str(recorded)[:8]}); "
            f"{dvc_file.name} is unchanged: run again"
        )
    return dvc_file


def recorded_version(project: Path, data: Path) -> tuple[str, Path | None] | None:
    """The data's hash and ``.dvc`` file when DVC already records and caches exactly this
    content, else None; data outside the project has nothing to record, only a hash."""
    dvc_file = dvc_file_of(project, data)
    if dvc_file is None:
        return data_hash(data), None
    current = data_hash(data)
    if dvc_file.is_file() and recorded_hash(dvc_file) == current and _cached(project, current):
        return current, dvc_file
    return None


def _cached(project: Path, md5: str) -> bool:
    """Whether DVC's local cache (wherever ``cache.dir`` puts it) holds this object."""
    with open_repo(project) as repo:
        return Path(repo.cache.local.oid_to_path(md5)).is_file()


def recorded_hash(dvc_file: Path) -> str | None:
    """The hash a ``.dvc`` file records; None when it is unreadable (see dvcfiles.repair)."""
    try:
        return str(yaml.safe_load(dvc_file.read_text())["outs"][0]["md5"])
    except (OSError, yaml.YAMLError, KeyError, IndexError, TypeError):
        return None


def changed_stages(workspace: Path) -> set[str]:
    """Stages of ``workspace/dvc.yaml`` whose deps, params or outs differ from ``dvc.lock``."""
    with open_repo(workspace) as repo:
        status = repo.status(targets=["dvc.yaml"])
    return {key.rsplit(":", 1)[-1] for key in status}


def _restore_or_run(stage: Stage, body: Callable[[], Any], pull: bool = False) -> str:
    """What ``Stage.run`` does between removing stale outputs and saving new ones, with
    ``body`` in place of the ``cmd`` subprocess; ``pull``: a run-cache hit's outputs come
    from the remote when this machine lacks them (``dvc repro --pull``)."""
    from dvc.stage.cache import RunCacheNotFoundError
    from dvc.stage.decorators import unlocked_repo

    stage.remove_outs(ignore_remove=False, force=False)
    try:
        stage.repo.stage_cache.restore(stage, pull=pull)
        return "restored from DVC's run cache"
    except RunCacheNotFoundError:
        stage.save_deps()
    # DVC's own wrapper releases the repository lock while the body runs, as around a cmd,
    # so `dvc status` from a shell (or the data watcher) still answers during training.
    unlocked_repo(lambda _stage: body())(stage)
    return "ran"


def _check_pins(stage: Stage, pins: Mapping[Path, str]) -> None:
    """Every pinned dependency of ``stage`` has the hash the run pinned: the one DVC is
    about to record in ``dvc.lock`` (or recorded already, for a stage it skips)."""
    wanted = {str(Path(p).resolve()): h for p, h in pins.items()}
    for dep in stage.deps:
        pinned = wanted.get(str(Path(dep.fs_path).resolve()))
        actual = dep.hash_info.value if dep.hash_info else None
        if pinned is not None and actual != pinned:
            raise DataChangedError(
                f"{dep.def_path} changed during the run (snapshot {pinned[:8]}, now "
                f"{str(actual)[:8]}); stage {stage.addressing} is not recorded: run again"
            )


def reproduce(
    workspace: Path,
    stage: str,
    body: Callable[[], Any],
    pins: Mapping[Path, str] | None = None,
    remote: dict[str, Any] | None = None,
) -> StageRun:
    """``dvc repro --single-item dvc.yaml:<stage>`` with ``body`` as the stage's command.
    ``pins`` (path -> hash) are inputs that must be exactly the run's snapshot: if one
    changed, the stage fails before ``dvc.lock`` or the run cache can record it. With a
    ``remote`` (DVC config), a run-cache hit is restored from it (``--pull``)."""
    from dvc.repo import lock_repo
    from dvc.stage.decorators import rwlocked

    start = time.perf_counter()
    with open_repo(workspace, remote) as repo, lock_repo(repo):
        target = repo.stage.get_target(f"dvc.yaml:{stage}")
        if not target.changed():
            _check_pins(target, pins or {})
            return StageRun(stage, False, _since(start), f"Stage '{stage}' didn't change, skipping")
        # DVC's per-path read/write locks on deps and outs, as `dvc repro` takes them.
        how = rwlocked(read=["deps"], write=["outs"])(_restore_or_run)(
            target, body, remote is not None
        )
        fault_point(f"stage.{stage}")
        target.save(run_cache=False)
        _check_pins(target, pins or {})
        if all(o.use_cache for o in target.outs if not (o.is_metric or o.is_plot)):
            repo.stage_cache.save(target)
        target.commit()
        target.dump(update_pipeline=False)
    log.info("stage %s %s", stage, how)
    return StageRun(stage, True, _since(start), f"Stage '{stage}' {how}; dvc.lock updated")


def sweep_cache_temp(project: Path) -> list[Path]:
    """Partial cache files a killed ``dvc add`` or commit left (``<token>.tmp`` beside the
    objects); under DVC's repository lock no other DVC process is writing them."""
    from dvc.repo import lock_repo

    from flywheel.core.atomic import sweep_temp

    with open_repo(project) as repo, lock_repo(repo):
        return sweep_temp(Path(repo.cache.local.path), any_writer=True)


def _since(start: float) -> float:
    return round(time.perf_counter() - start, 3)
