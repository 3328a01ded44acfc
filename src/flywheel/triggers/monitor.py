"""The debounce -> hash -> decide -> emit loop, pure apart from the side effects it is given.

A change is announced only for content that is new: not production's data, not the last
hash announced. What was announced is persisted so a restarted watcher does not announce
the same data twice, unless the run it started crashed (killed, its process lost) or was
cancelled before it started: then the same data is announced again, up to a few times. A
run that failed (bad data, a refused model) is never retried for the same data: it would
fail the same way.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flywheel.core.atomic import atomic_write_text
from flywheel.triggers.debounce import Debouncer

log = logging.getLogger("flywheel.watcher")


@dataclass(frozen=True)
class Decision:
    emit: bool
    reason: str


# How the run of an announced data version ended when it is worth announcing again:
# crashed (its process died), or cancelled before it ever started.
RETRY_STATES = frozenset({"CRASHED", "CANCELLED_UNSTARTED"})


@dataclass
class ChangeFilter:
    """Decides whether a data hash deserves an event (new content, not yet announced, or
    announced but its run crashed)."""

    last_emitted: str | None = None
    retries: int = 0
    max_retries: int = 3

    def decide(self, current: str, production: str | None, last_run: str | None = None) -> Decision:
        if current == production:
            # Back to what production was trained on: forget the last event, so changing
            # the data to that content again is news again.
            self.last_emitted, self.retries = None, 0
            return Decision(False, "same data as the production model")
        if current != self.last_emitted:
            return Decision(True, "new content")
        if last_run in RETRY_STATES:
            if self.retries >= self.max_retries:
                return Decision(False, f"its run ended {last_run} {self.retries + 1} times")
            return Decision(True, f"its run ended {last_run}: announcing it again")
        return Decision(False, "already announced")

    def emitted(self, data_hash: str) -> None:
        self.retries = self.retries + 1 if data_hash == self.last_emitted else 0
        self.last_emitted = data_hash


def load_last_emitted(path: Path) -> tuple[str | None, int]:
    """The last data hash announced and how often it was announced again after a crash."""
    try:
        state = json.loads(path.read_text())
        value, retries = state.get("last_emitted"), int(state.get("retries", 0))
    except (OSError, ValueError, AttributeError, TypeError):
        return None, 0  # unreadable: announcing again is the safe side
    return (str(value) if value else None), retries


def save_last_emitted(path: Path, data_hash: str | None, retries: int = 0) -> None:
    # Persisted so a restarted watcher does not announce the same data a second time.
    payload = json.dumps({"last_emitted": data_hash, "retries": retries}) + "\n"
    atomic_write_text(path, payload, fault="watcher.state_save")


class ChangeMonitor:
    """The debounce -> hash -> decide -> emit loop, with every side effect injected."""

    def __init__(
        self,
        *,
        debouncer: Debouncer,
        changes: ChangeFilter,
        hasher: Callable[[], str],
        production_hash: Callable[[], str | None],
        emit: Callable[[str, str | None, dict[str, Any]], str],
        on_emitted: Callable[[str | None, int], None] = lambda _h, _n: None,
        run_state: Callable[[str], str | None] = lambda _h: None,
        retry_s: float = 5.0,
    ) -> None:
        self.debouncer = debouncer
        self.changes = changes
        self._hasher = hasher
        self._production_hash = production_hash
        self._emit = emit
        self._on_emitted = on_emitted
        self._run_state = run_state
        self._retry_s = retry_s
        self.last_change_wall: float | None = None

    def changed(self) -> None:
        self.last_change_wall = time.time()
        self.debouncer.changed()

    def recheck(self) -> None:
        """Look again without a file change (did the last announced run crash?)."""
        self.debouncer.changed()

    def _last_run(self, data_hash: str) -> str | None:
        try:
            return self._run_state(data_hash)
        except Exception as err:  # the server may be down; the next recheck asks again
            log.info("could not ask how the run of %s ended: %s", data_hash[:8], err)
            return None

    def step(self) -> str | None:
        """Check once if due; returns the emitted event's id, if one went out."""
        if not self.debouncer.take():
            return None
        try:
            current = self._hasher()
        except (FileNotFoundError, NotADirectoryError) as err:
            # A file vanished mid-walk: the folder is still changing; look again later.
            log.info("data changed while hashing (%s); retrying", err)
            self.debouncer.changed()
            return None
        production = self._production_hash()
        changes = self.changes
        before = changes.last_emitted
        last_run = self._last_run(current) if current == before != production else None
        decision = changes.decide(current, production, last_run)
        if changes.last_emitted != before:
            self._on_emitted(changes.last_emitted, changes.retries)
        if not decision.emit:
            log.info("data %s: no event (%s)", current[:8], decision.reason)
            return None
        details = {
            "changed_at": self.last_change_wall,
            "emitted_at": time.time(),
            "debounce_s": self.debouncer.quiet_s,
        }
        try:
            event_id = self._emit(current, production, details)
        except Exception as err:
            log.warning(
                "could not emit the data change (%s); retrying in %.0fs", err, self._retry_s
            )
            self.debouncer.changed(delay=self._retry_s)
            return None
        self.changes.emitted(current)
        self._on_emitted(current, self.changes.retries)
        log.info(
            "data %s: %s (production %s): event %s emitted",
            current[:8],
            decision.reason,
            (production or "none")[:8],
            event_id,
        )
        return event_id
