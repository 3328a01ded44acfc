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


TWO_STAGES = """\
stages:
  first:
    cmd: python -c "open('one.txt', 'w').write('1')"
    deps: [data]
    outs: [one.txt]
  second:
    cmd: python -c "open('two.txt', 'w').write(open('one.txt').read() * 2)"
    deps: [one.txt]
    outs: [two.txt]
"""


def _two_stage_lock(root: Path, remember: bool) -> str:
    from flywheel.pipeline import dvcfiles
    from flywheel.pipeline.dvc import reproduce

    root.mkdir()
    init_repository(root, author="ci")
    (root / "dvc.yaml").write_text(TWO_STAGES)
    (root / "data").mkdir()
    (root / "data" / "a.txt").write_text("one\n")
    bodies = {
        "first": lambda: Path("one.txt").write_text("1"),
        "second": lambda: Path("two.txt").write_text(Path("one.txt").read_text() * 2),
    }
    for name, body in bodies.items():
        if not remember:
            dvcfiles._last_written.clear()
        assert reproduce(root, name, body).ran
    return (root / "dvc.lock").read_text()


def test_dvc_lock_written_from_memory_has_the_bytes_of_a_fresh_parse(tmp_path: Path) -> None:
    """dvc.lock's second stage is added to the structure this process wrote (not re-parsed):
    the file ends byte for byte as with DVC's parse of it, and DVC's CLI reads it clean."""
    remembered = _two_stage_lock(tmp_path / "remembered", remember=True)
    parsed = _two_stage_lock(tmp_path / "parsed", remember=False)
    assert remembered == parsed
    assert "second:" in remembered and "first:" in remembered
    status = subprocess.run(
        [sys.executable, "-m", "dvc", "status", "--json"],
        cwd=tmp_path / "remembered",
        capture_output=True,
        text=True,
        check=True,
    )
    assert status.stdout.strip() == "{}"
