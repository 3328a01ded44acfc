"""One writer per project: two runs never overlap, whatever started them.

The retrain deployment's concurrency limit keeps the service's own runs apart, but
``flywheel run`` from a shell, a second ``up`` on another server or a test harness know
nothing of it. Every run therefore holds an exclusive ``flock`` on the project's
``.flywheel/run.lock`` from its snapshot to the end of its deploy. The kernel releases it
when the holder dies, ``kill -9`` included, so a crash never leaves it taken. The file's
content names the holder (pid, start time, what started it) for the message a waiting or
refused run shows.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flywheel.core.errors import ProjectBusy
from flywheel.core.layout import Layout

log = logging.getLogger(__name__)


def read_holder(path: Path) -> dict[str, Any]:
    try:
        holder = json.loads(path.read_text() or "{}")
    except (OSError, json.JSONDecodeError):
        return {}
    return dict(holder) if isinstance(holder, dict) else {}


def describe(holder: dict[str, Any]) -> str:
    if not holder:
        return "another run (it has not said which yet)"
    return (
        f"{holder.get('what', 'a run')} (pid {holder.get('pid', '?')}, started "
        f"{holder.get('started_at', '?')} by {holder.get('trigger', '?')})"
    )


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@contextlib.contextmanager
def project_lock(
    project: Path,
    *,
    what: str,
    trigger: str,
    wait_s: float,
    on_wait: Callable[[str], None] = log.info,
) -> Iterator[None]:
    """Hold the project's run lock; wait up to ``wait_s`` for a holder to finish, then raise
    :class:`ProjectBusy` naming it. ``on_wait`` hears once that the run is waiting."""
    path = Layout.run_lock(project)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait_s
        announced = False
        while not _try_lock(fd):
            holder = describe(read_holder(path))
            if time.monotonic() >= deadline:
                raise ProjectBusy(
                    f"{project} is busy: {holder} holds it; waited {wait_s:.0f}s "
                    "(schedule.wait_for_run_s). Try again when it has finished"
                )
            if not announced:
                on_wait(f"waiting for {holder} to finish (up to {wait_s:.0f}s)")
                announced = True
            time.sleep(0.5)
        me = {
            "pid": os.getpid(),
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "what": what,
            "trigger": trigger,
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
