"""The debounce -> hash -> decide -> emit loop, pure apart from the side effects it is given.

A change is announced only for content that is new: not production's data, not the last
hash announced. What was announced is persisted so a restarted watcher does not announce
the same data twice.
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


@dataclass
class ChangeFilter:
    """Decides whether a data hash deserves an event (new content, not yet announced)."""

    last_emitted: str | None = None

    def decide(self, current: str, production: str | None) -> Decision:
        if current == production:
            # Back to what production was trained on: forget the last event, so changing
            # the data to that content again is news again.
            self.last_emitted = None
            return Decision(False, "same data as the production model")
        if current == self.last_emitted:
            return Decision(False, "already announced")
        return Decision(True, "new content")

    def emitted(self, data_hash: str) -> None:
        self.last_emitted = data_hash


def load_last_emitted(path: Path) -> str | None:
    try:
        value = json.loads(path.read_text()).get("last_emitted")
    except (FileNotFoundError, json.JSONDecodeError, AttributeError):
        return None
    return str(value) if value else None


def save_last_emitted(path: Path, data_hash: str | None) -> None:
    # Persisted so a restarted watcher does not announce the same data a second time.
    atomic_write_text(path, json.dumps({"last_emitted": data_hash}) + "\n")


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
        on_emitted: Callable[[str | None], None] = lambda _h: None,
        retry_s: float = 5.0,
    ) -> None:
        self.debouncer = debouncer
        self.changes = changes
        self._hasher = hasher
        self._production_hash = production_hash
        self._emit = emit
        self._on_emitted = on_emitted
        self._retry_s = retry_s
        self.last_change_wall: float | None = None

    def changed(self) -> None:
        self.last_change_wall = time.time()
        self.debouncer.changed()

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
        before = self.changes.last_emitted
        decision = self.changes.decide(current, production)
        if self.changes.last_emitted != before:
            self._on_emitted(self.changes.last_emitted)
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
        self._on_emitted(current)
        log.info(
            "data %s changed (production %s): event %s emitted",
            current[:8],
            (production or "none")[:8],
            event_id,
        )
        return event_id
