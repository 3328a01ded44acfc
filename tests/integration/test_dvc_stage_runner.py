"""flywheel.pipeline.dvc.reproduce on a real DVC repository: the stage body runs in-process and
DVC's own bookkeeping (lock file, cache, run cache, locks) ends as ``dvc repro`` leaves it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from flywheel.pipeline import dvc as dvc_ops

DVC_YAML = """\
stages:
  double:
    cmd: python double.py
    deps: [input.txt, double.py]
    outs: [output.txt]
"""
SCRIPT = """\
from pathlib import Path
Path("output.txt").write_text(Path("input.txt").read_text() * 2)
"""


def _dvc(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=root, capture_output=True, text=True, check=True
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    _dvc(root, "init", "--no-scm", "-q")
    (root / "dvc.yaml").write_text(DVC_YAML)
    (root / "double.py").write_text(SCRIPT)
    (root / "input.txt").write_text("ab")
    return root


class Body:
    """The stage's work as the in-process body: what `python double.py` does, counted."""

    def __init__(self) -> None:
        self.calls = 0
        self.saw_stale_output = False

    def __call__(self) -> None:
        self.calls += 1
        self.saw_stale_output = Path("output.txt").exists()  # cwd is the workspace
        Path("output.txt").write_text(Path("input.txt").read_text() * 2)


def test_a_run_leaves_dvc_as_dvc_repro_would(repo: Path) -> None:
    body = Body()
    run = dvc_ops.reproduce(repo, "double", body)
    assert run.ran and body.calls == 1
    assert (repo / "output.txt").read_text() == "abab"
    assert json.loads(_dvc(repo, "status", "--json").stdout) == {}
    # DVC's own repro agrees there is nothing left to do, and so does ours.
    assert "didn't change" in _dvc(repo, "repro", "--single-item", "dvc.yaml:double").stdout
    again = dvc_ops.reproduce(repo, "double", body)
    assert not again.ran and body.calls == 1
    assert dvc_ops.changed_stages(repo) == set()


def test_changed_deps_rerun_and_reverted_deps_come_from_the_run_cache(repo: Path) -> None:
    body = Body()
    dvc_ops.reproduce(repo, "double", body)
    (repo / "input.txt").write_text("xyz")
    assert dvc_ops.changed_stages(repo) == {"double"}
    dvc_ops.reproduce(repo, "double", body)
    assert body.calls == 2 and not body.saw_stale_output  # stale outputs removed first
    assert (repo / "output.txt").read_text() == "xyzxyz"

    (repo / "input.txt").write_text("ab")
    restored = dvc_ops.reproduce(repo, "double", body)
    assert restored.ran and "run cache" in restored.output
    assert body.calls == 2  # the body did not run: DVC restored its earlier outputs
    assert (repo / "output.txt").read_text() == "abab"
    assert json.loads(_dvc(repo, "status", "--json").stdout) == {}


def test_a_failing_body_records_nothing(repo: Path) -> None:
    dvc_ops.reproduce(repo, "double", Body())
    lock = (repo / "dvc.lock").read_text()
    (repo / "input.txt").write_text("changed")

    def broken() -> None:
        raise ValueError("bad input row 7")

    with pytest.raises(ValueError, match="bad input row 7"):
        dvc_ops.reproduce(repo, "double", broken)
    assert (repo / "dvc.lock").read_text() == lock
    assert dvc_ops.changed_stages(repo) == {"double"}


def test_a_repository_locked_by_another_process_is_busy(repo: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom dvc.repo import Repo\nr = Repo('.')\nr.lock.lock()\n"
            "print('locked', flush=True)\ntime.sleep(600)",  # killed below
        ],
        cwd=repo,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        with pytest.raises(dvc_ops.DvcBusy, match="locked by another process"):
            dvc_ops.reproduce(repo, "double", _never_called())
        # Busy after DVC's own few seconds of retries, not a wait for the holder (which
        # outlives this bound by far); generous, for a loaded machine.
        assert time.monotonic() - started < 120
    finally:
        holder.kill()
        holder.wait()


def _never_called() -> Callable[[], None]:
    def body() -> None:
        raise AssertionError("the body ran while another process held the repository")

    return body


KILLED_REPRO = """\
import sys
from pathlib import Path
from flywheel.pipeline import dvc
def body():
    Path("output.txt").write_text(Path("input.txt").read_text() * 2)
dvc.reproduce(Path(sys.argv[1]), "double", body)
"""


def test_a_kill_inside_the_dvc_lock_write_keeps_the_lock_readable(repo: Path) -> None:
    """DVC writes dvc.lock in place; through flywheel it is written atomically, so a kill
    in the middle leaves the previous lock, and the next run restores from the run cache."""
    import os

    from flywheel.core.faults import ENV

    dvc_ops.reproduce(repo, "double", Body())
    lock = (repo / "dvc.lock").read_text()
    (repo / "input.txt").write_text("xyz")
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_REPRO, str(repo)],
        env={**os.environ, ENV: "dvcfile.dvc.lock"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert killed.returncode == -9, killed.stderr
    assert (repo / "dvc.lock").read_text() == lock
    body = Body()
    again = dvc_ops.reproduce(repo, "double", body)
    assert again.restored and body.calls == 0
    assert json.loads(_dvc(repo, "status", "--json").stdout) == {}


def test_a_pinned_input_that_changed_records_nothing(repo: Path) -> None:
    from flywheel.core.errors import DataChangedError

    dvc_ops.reproduce(repo, "double", Body())
    pinned = {repo / "input.txt": dvc_ops.data_hash(repo / "input.txt")}
    lock = (repo / "dvc.lock").read_text()
    (repo / "input.txt").write_text("changed after the snapshot")
    with pytest.raises(DataChangedError, match="changed during the run"):
        dvc_ops.reproduce(repo, "double", Body(), pinned)
    assert (repo / "dvc.lock").read_text() == lock  # neither dvc.lock nor the run cache
    body = Body()
    dvc_ops.reproduce(repo, "double", body)
    assert body.calls == 1
