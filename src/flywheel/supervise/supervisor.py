"""Start child processes in order, restart the ones that die (with back-off), stop them all.

Each child runs in its own session, so a Ctrl-C on the terminal reaches only the
supervisor, which then stops the children in reverse order (the watcher and the serve
process before the server they talk to). On Linux a child also gets SIGTERM if the
supervisor itself is killed, so nothing is orphaned.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from flywheel.supervise.backoff import Backoff

_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class ChildSpec:
    name: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    log: Path
    # Called after the first start; raises when the child never became usable.
    wait_ready: Callable[[subprocess.Popen[bytes]], None] | None = None
    # Kill what the child left in its process group when it dies (a server's workers
    # would hold its port). Off for the serve process: a flow run it started may finish.
    reap_group: bool = False


@dataclass
class Child:
    spec: ChildSpec
    backoff: Backoff
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = 0
    restart_at: float | None = None
    last_exit: int | None = None
    log_handle: IO[bytes] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None


def _die_with_parent() -> None:  # pragma: no cover - runs in the forked child
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def terminate_group(pid: int, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    """SIGTERM the process group led by ``pid``, then SIGKILL whatever is left."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            break
        if proc is None and not _group_alive(pid):
            break
        time.sleep(0.1)
    # Anything still in the group (the leader, or a grandchild it left behind) goes now.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    if proc is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Supervisor:
    def __init__(
        self,
        specs: list[ChildSpec],
        *,
        backoff: Callable[[], Backoff] = Backoff,
        echo: Callable[[str], None] = print,
        on_change: Callable[[], None] | None = None,
        stop_timeout: float = 15.0,
    ) -> None:
        self.children = [Child(spec, backoff()) for spec in specs]
        self._echo = echo
        self._on_change = on_change or (lambda: None)
        self._stop_timeout = stop_timeout
        self.stopping = False

    def child(self, name: str) -> Child:
        return next(c for c in self.children if c.spec.name == name)

    def _spawn(self, child: Child) -> None:
        spec = child.spec
        spec.log.parent.mkdir(parents=True, exist_ok=True)
        if child.log_handle is None:
            child.log_handle = spec.log.open("ab")
        child.log_handle.write(f"\n--- {time.strftime('%F %T')} starting {spec.name}\n".encode())
        child.log_handle.flush()
        child.proc = subprocess.Popen(
            spec.argv,
            cwd=spec.cwd,
            env=spec.env,
            stdin=subprocess.DEVNULL,
            stdout=child.log_handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        child.started_at = time.monotonic()
        child.restart_at = None
        self._on_change()

    def start(self) -> None:
        """Start every child in order, waiting for each one that has a readiness check."""
        try:
            for child in self.children:
                self._spawn(child)
                if child.spec.wait_ready is not None and child.proc is not None:
                    child.spec.wait_ready(child.proc)
        except BaseException:
            self.stop()
            raise

    def poll(self, now: float | None = None) -> None:
        """One supervision step: notice exits, schedule restarts, perform due restarts."""
        if self.stopping:
            return
        now = time.monotonic() if now is None else now
        for child in self.children:
            if child.proc is not None and child.restart_at is None:
                code = child.proc.poll()
                if code is None:
                    continue
                uptime = now - child.started_at
                delay = child.backoff.next_delay(uptime)
                child.last_exit = code
                child.restart_at = now + delay
                self._echo(
                    f"{child.spec.name} (pid {child.proc.pid}) exited with code {code} after"
                    f" {uptime:.0f}s; restarting in {delay:.0f}s (see {child.spec.log})"
                )
                if child.spec.reap_group:
                    terminate_group(child.proc.pid, 0.5)
                self._on_change()
            if child.restart_at is not None and now >= child.restart_at:
                child.restarts += 1
                try:
                    self._spawn(child)
                except OSError as err:  # e.g. out of processes: try again later
                    child.restart_at = now + child.backoff.next_delay(0.0)
                    self._echo(f"{child.spec.name} could not be restarted: {err}")
                    continue
                self._echo(
                    f"{child.spec.name} restarted (pid {child.pid}, restart #{child.restarts})"
                )

    def run(self, stop: threading.Event, tick: float = 0.5) -> None:
        while not stop.is_set():
            self.poll()
            stop.wait(tick)

    def stop(self, names: Collection[str] | None = None) -> None:
        """Stop the named children (default: all), last started first; no more restarts."""
        self.stopping = True
        for child in reversed(self.children):
            if names is not None and child.spec.name not in names:
                continue
            if child.proc is not None and child.proc.poll() is None:
                terminate_group(child.proc.pid, self._stop_timeout, child.proc)
            if child.log_handle is not None:
                child.log_handle.close()
                child.log_handle = None
        self._on_change()

    def snapshot(self) -> dict[str, Any]:
        return {
            c.spec.name: {
                "pid": c.pid,
                "alive": c.proc is not None and c.proc.poll() is None,
                "restarts": c.restarts,
                "last_exit": c.last_exit,
                "log": str(c.spec.log),
            }
            for c in self.children
        }
