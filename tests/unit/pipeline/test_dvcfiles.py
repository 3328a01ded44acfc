"""DVC's own files: written atomically through DVC's serialiser (same bytes as the DVC
command line writes), and repaired when a crash left them unreadable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from flywheel.core.faults import ENV
from flywheel.pipeline.dvc import init_repository, open_repo, recorded_hash
from flywheel.pipeline.dvcfiles import repair

ADD = (
    "import sys; from pathlib import Path; from flywheel.pipeline.dvc import open_repo\n"
    "with open_repo(Path(sys.argv[1])) as repo: repo.add('data')"
)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    init_repository(tmp_path, author="ci")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.txt").write_text("one\n")
    return tmp_path


def _dvc_cli(root: Path, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "dvc", *args], cwd=root, check=True, capture_output=True)


def test_atomic_writes_keep_dvcs_own_bytes(repo: Path) -> None:
    _dvc_cli(repo, "add", "-q", "data")
    by_cli = (repo / "data.dvc").read_text()
    (repo / "data.dvc").unlink()
    with open_repo(repo) as dvc_repo:
        dvc_repo.add("data")
    assert (repo / "data.dvc").read_text() == by_cli


def test_a_kill_inside_dvcs_write_leaves_the_previous_file(repo: Path) -> None:
    with open_repo(repo) as dvc_repo:
        dvc_repo.add("data")
    before = (repo / "data.dvc").read_text()
    (repo / "data" / "b.txt").write_text("two\n")
    proc = subprocess.run(
        [sys.executable, "-c", ADD, str(repo)],
        env={**os.environ, ENV: "dvcfile.data.dvc"},
        capture_output=True,
        check=False,
    )
    assert proc.returncode == -9, proc.stderr
    assert (repo / "data.dvc").read_text() == before
    assert recorded_hash(repo / "data.dvc") is not None


def test_repair_moves_unreadable_files_aside_and_drops_a_corrupt_rwlock(repo: Path) -> None:
    (repo / "dvc.lock").write_text("schema: '2.0'\nstages:\n  train: {deps: [")
    (repo / "data.dvc").write_text("")
    rwlock = repo / ".dvc" / "tmp" / "rwlock"
    rwlock.parent.mkdir(parents=True, exist_ok=True)
    rwlock.write_text('{"read": {')
    done = repair(repo, repo, repo / "data.dvc")
    assert len(done) == 3
    assert not (repo / "dvc.lock").exists() and not (repo / "data.dvc").exists()
    assert not rwlock.exists()
    assert len(list(repo.glob("dvc.lock.corrupt-*"))) == 1
    assert repair(repo, repo, repo / "data.dvc") == []  # nothing left to repair
