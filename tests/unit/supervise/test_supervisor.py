"""Supervisor back-off and restarts, with real child processes (no Prefect involved)."""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from pathlib import Path

import pytest

from flywheel.supervise.backoff import Backoff
from flywheel.supervise.errors import ServiceError
from flywheel.supervise.ports import free_port, port_in_use
from flywheel.supervise.state import pid_alive
from flywheel.supervise.supervisor import ChildSpec, Supervisor, terminate_group

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]


def test_backoff_doubles_up_to_the_cap_and_forgives_a_long_run() -> None:
    backoff = Backoff(initial=1.0, factor=2.0, maximum=30.0, stable_after=60.0)
    delays = [backoff.next_delay(uptime=0.5) for _ in range(7)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert backoff.next_delay(uptime=120.0) == 1.0  # ran fine for two minutes: start over
    assert backoff.next_delay(uptime=0.5) == 2.0


def _spec(tmp_path: Path, name: str, argv: list[str], **kw: object) -> ChildSpec:
    return ChildSpec(name, argv, dict(os.environ), tmp_path, tmp_path / f"{name}.log", **kw)  # type: ignore[arg-type]


# Generous: each wait covers a Python child starting (or dying) on a possibly loaded machine.
def _wait(predicate, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_killed_child_is_restarted_after_its_backoff(tmp_path: Path) -> None:
    messages: list[str] = []
    supervisor = Supervisor(
        [_spec(tmp_path, "a", SLEEPER), _spec(tmp_path, "b", SLEEPER)],
        backoff=lambda: Backoff(initial=0.5),
        echo=messages.append,
    )
    supervisor.start()
    try:
        a, b = supervisor.child("a"), supervisor.child("b")
        first = a.pid
        assert first is not None and b.pid is not None
        os.kill(first, signal.SIGKILL)
        _wait(lambda: a.proc is not None and a.proc.poll() is not None)
        now = time.monotonic()
        supervisor.poll(now)
        assert a.restart_at == pytest.approx(now + 0.5)
        assert "exited with code -9" in messages[-1]
        supervisor.poll(now + 0.4)
        assert a.pid == first  # still backing off
        supervisor.poll(now + 0.5)
        assert a.pid != first and a.restarts == 1 and pid_alive(a.pid or 0)
        assert b.restarts == 0  # the other child was left alone
    finally:
        supervisor.stop()
    assert all(c.proc is not None and c.proc.poll() is not None for c in supervisor.children)


def test_a_crash_looping_child_backs_off_further_each_time(tmp_path: Path) -> None:
    supervisor = Supervisor(
        [_spec(tmp_path, "crash", [sys.executable, "-c", "raise SystemExit(3)"])],
        backoff=lambda: Backoff(initial=1.0, factor=2.0),
        echo=lambda _m: None,
    )
    supervisor.start()
    child = supervisor.child("crash")
    delays = []
    try:
        for _ in range(3):
            _wait(lambda: child.proc is not None and child.proc.poll() is not None)
            now = time.monotonic()
            supervisor.poll(now)
            assert child.restart_at is not None and child.last_exit == 3
            delays.append(round(child.restart_at - now, 3))
            supervisor.poll(child.restart_at)
    finally:
        supervisor.stop()
    assert delays == [1.0, 2.0, 4.0]


def test_failed_readiness_stops_what_was_started(tmp_path: Path) -> None:
    def never_ready(_proc: object) -> None:
        raise ServiceError("not ready")

    supervisor = Supervisor(
        [
            _spec(tmp_path, "first", SLEEPER),
            _spec(tmp_path, "second", SLEEPER, wait_ready=never_ready),
        ],
        echo=lambda _m: None,
    )
    with pytest.raises(ServiceError):
        supervisor.start()
    assert all(c.proc is not None and c.proc.poll() is not None for c in supervisor.children)


def test_terminate_group_takes_grandchildren_too(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    code = (
        "import subprocess, sys, time;"
        f"p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)']);"
        f"open({str(pid_file)!r}, 'w').write(str(p.pid)); time.sleep(120)"
    )
    supervisor = Supervisor([_spec(tmp_path, "parent", [sys.executable, "-c", code])], echo=print)
    supervisor.start()
    _wait(lambda: pid_file.is_file() and pid_file.read_text().strip() != "")
    grandchild = int(pid_file.read_text())
    parent = supervisor.child("parent")
    assert parent.pid is not None
    terminate_group(parent.pid, 5.0, parent.proc)
    _wait(lambda: not pid_alive(grandchild))
    supervisor.stop()


def test_ports() -> None:
    port = free_port()
    assert not port_in_use("127.0.0.1", port)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", port))
        listener.listen()
        assert port_in_use("127.0.0.1", port)
