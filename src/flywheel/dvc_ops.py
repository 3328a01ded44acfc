"""DVC as the pipeline sees it: data snapshots, stage status and single-stage reproduction.

DVC runs as a subprocess of the same interpreter, so it sees the same installed packages
and finds the ``flywheel`` console script that each stage's ``cmd`` calls.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from flywheel.errors import FlywheelError

log = logging.getLogger(__name__)

STAGES = ("validate", "preprocess", "train", "export", "compress", "evaluate")


class StageFailed(FlywheelError):
    def __init__(self, stage: str, returncode: int, output: str) -> None:
        self.stage = stage
        self.returncode = returncode
        self.output = output
        tail = "\n".join(output.strip().splitlines()[-15:])
        super().__init__(f"stage {stage!r} failed (exit {returncode}):\n{tail}")


class DvcBusy(FlywheelError):
    """Another DVC process holds the repository lock: transient, worth a retry."""


@dataclass(frozen=True)
class StageRun:
    stage: str
    ran: bool
    seconds: float
    output: str


def _env() -> dict[str, str]:
    env = dict(os.environ)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    env.setdefault("DVC_NO_ANALYTICS", "1")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def dvc(args: list[str], cwd: Path, *, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "dvc", *args],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0 and "Unable to acquire lock" in (proc.stdout + proc.stderr):
        raise DvcBusy(f"DVC repository at {cwd} is locked by another process")
    if check and proc.returncode != 0:
        raise FlywheelError(f"dvc {' '.join(args)} failed: {(proc.stderr or proc.stdout).strip()}")
    return proc


def data_hash(path: Path) -> str:
    """The content hash DVC records for a file or folder (``<md5>.dir`` for folders)."""
    from dvc_data.hashfile.build import build
    from dvc_data.hashfile.db import HashFileDB
    from dvc_objects.fs import MemoryFileSystem
    from dvc_objects.fs.local import LocalFileSystem

    path = Path(path).resolve()
    if not path.exists():
        raise FileNotFoundError(f"dataset not found: {path}")
    odb = HashFileDB(MemoryFileSystem(), "/odb")
    _, _, obj = build(odb, str(path), LocalFileSystem(), "md5")
    return str(obj.hash_info.value)


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def snapshot_data(project: Path, data: Path) -> tuple[str, Path | None]:
    """Version the dataset with ``dvc add`` when it lives in the project; returns its hash
    and the ``.dvc`` file that records it (None for data outside the project)."""
    if not _inside(data, project):
        log.warning("%s is outside the project: hashed but not versioned by DVC", data)
        return data_hash(data), None
    rel = os.path.relpath(data.resolve(), project)
    dvc_file = project / f"{rel}.dvc"
    current = data_hash(data)
    if dvc_file.is_file() and recorded_hash(dvc_file) == current and _cached(project, current):
        return current, dvc_file  # recorded and cached already: skip dvc add's re-hashing
    dvc(["add", "--quiet", rel], cwd=project)
    return recorded_hash(dvc_file), dvc_file


def _cached(project: Path, md5: str) -> bool:
    digest = md5.removesuffix(".dir")
    suffix = ".dir" if md5.endswith(".dir") else ""
    return (
        project / ".dvc" / "cache" / "files" / "md5" / digest[:2] / f"{digest[2:]}{suffix}"
    ).is_file()


def recorded_hash(dvc_file: Path) -> str:
    meta = yaml.safe_load(dvc_file.read_text())
    return str(meta["outs"][0]["md5"])


def changed_stages(workspace: Path) -> set[str]:
    """Stages of ``workspace/dvc.yaml`` whose deps, params or outs differ from ``dvc.lock``."""
    proc = dvc(["status", "--json", "dvc.yaml"], cwd=workspace)
    status = json.loads(proc.stdout or "{}")
    return {key.rsplit(":", 1)[-1] for key in status}


def repro_stage(workspace: Path, stage: str) -> StageRun:
    start = time.perf_counter()
    proc = dvc(["repro", "--single-item", f"dvc.yaml:{stage}"], cwd=workspace, check=False)
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise StageFailed(stage, proc.returncode, output)
    ran = "didn't change, skipping" not in output
    return StageRun(stage, ran, round(time.perf_counter() - start, 3), output)
