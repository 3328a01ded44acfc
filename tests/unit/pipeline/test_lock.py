"""The project's one-writer lock: a second holder waits, then is refused naming the first;
a killed holder never leaves it taken."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flywheel.core.errors import ProjectBusy
from flywheel.core.layout import Layout
from flywheel.pipeline.lock import project_lock

HOLD = (
    "import sys, time; from pathlib import Path; from flywheel.pipeline.lock import "
    "project_lock\nwith project_lock(Path(sys.argv[1]), what='flow run holder', "
    "trigger='event', wait_s=0):\n    print('held', flush=True); time.sleep(60)"
)


def _holder(project: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(project)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_run_is_refused_naming_the_holder(tmp_path: Path) -> None:
    proc = _holder(tmp_path)
    try:
        heard: list[str] = []
        start = time.monotonic()
        with (
            pytest.raises(ProjectBusy) as err,
            project_lock(tmp_path, what="cli", trigger="manual", wait_s=1.0, on_wait=heard.append),
        ):
            pass
        assert time.monotonic() - start >= 1.0
        assert f"flow run holder (pid {proc.pid}" in str(err.value)
        assert "by event" in str(err.value) and "wait_for_run_s" in str(err.value)
        assert len(heard) == 1 and heard[0].startswith("waiting for flow run holder")
    finally:
        proc.kill()
        proc.wait()


def test_kill_9_of_the_holder_frees_the_lock(tmp_path: Path) -> None:
    proc = _holder(tmp_path)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with project_lock(tmp_path, what="next", trigger="manual", wait_s=5.0):
        assert '"what": "next"' in Layout.run_lock(tmp_path).read_text()
    assert Layout.run_lock(tmp_path).read_text() == ""
