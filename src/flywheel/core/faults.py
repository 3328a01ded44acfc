"""Named fault points, so the crash-safety tests can kill a real run exactly where it hurts.

``FLYWHEEL_FAULT=name`` makes this process SIGKILL itself (no cleanup, no ``finally``, as a
power cut or ``kill -9`` would) when it reaches ``fault_point("name")``; ``name@N`` waits
for the Nth time; ``name:raise`` raises :class:`FaultInjected` there instead, for the
failures a kill cannot show (a post-promotion check that fails). Several comma-separated
entries may be armed at once. ``FLYWHEEL_FAULT_ONCE=<path>`` makes a point fire in one
process only, whichever reaches it first (it creates ``path``; once that exists, the point
is inert): a service whose every run inherits the variable loses one run, not all. With
``FLYWHEEL_FAULT`` unset, as everywhere but in tests/faults/, a point costs one
environment lookup.
"""

from __future__ import annotations

import os
import signal

from flywheel.core.errors import FlywheelError

ENV = "FLYWHEEL_FAULT"
ONCE_ENV = "FLYWHEEL_FAULT_ONCE"
_HITS: dict[str, int] = {}


class FaultInjected(FlywheelError):
    """Raised at a fault point armed with ``:raise``."""


def _armed(spec: str, name: str) -> tuple[int, str] | None:
    for entry in spec.split(","):
        target, _, action = entry.strip().partition(":")
        point, _, nth = target.partition("@")
        if point == name:
            return int(nth or 1), action or "kill"
    return None


def fault_point(name: str) -> None:
    """Kill (or raise in) this process here when ``FLYWHEEL_FAULT`` names this point."""
    spec = os.environ.get(ENV)
    if not spec:
        return
    armed = _armed(spec, name)
    if armed is None:
        return
    nth, action = armed
    _HITS[name] = _HITS.get(name, 0) + 1
    if _HITS[name] != nth or not _first_process():
        return
    if action == "raise":
        raise FaultInjected(f"fault injected at {name}")
    os.kill(os.getpid(), signal.SIGKILL)


def _first_process() -> bool:
    once = os.environ.get(ONCE_ENV)
    if not once:
        return True
    try:
        os.close(os.open(once, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True
