"""The registry's own durable history: one JSON line per event, appended and fsynced.

``production.json`` says what is live now; the journal says how every version got where
it is, so the registry can tell a version whose promotion a kill interrupted (stranded:
resumable, it passed the gate) from one that was rolled back or failed its check after
promotion (retired: never redeployed), and name the last good production version when the
alias file itself is lost or corrupt. A kill mid-append leaves at most a torn last line,
which :meth:`Journal.state` skips.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flywheel.core.atomic import append_line

log = logging.getLogger(__name__)

# A gated candidate is about to be registered; ``sha256`` is the model, ``against`` the
# production version it was measured with (None for a first model).
PENDING = "pending"
REGISTERED = "registered"
PROMOTED = "promoted"
VERIFIED = "verified"  # the post-promotion check passed: a good production version
RETIRED = "retired"  # rolled back, or failed its post-promotion check


@dataclass
class JournalState:
    promoted: set[str] = field(default_factory=set)
    # Good production versions, the most recently verified last.
    verified: list[str] = field(default_factory=list)
    retired: dict[str, str] = field(default_factory=dict)
    mentioned: set[str] = field(default_factory=set)


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, event: str, version: str, **detail: Any) -> None:
        entry = {
            "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "event": event,
            "version": version,
            **detail,
        }
        append_line(self.path, json.dumps(entry, sort_keys=True))

    def events(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        out = []
        for number, line in enumerate(self.path.read_text(errors="replace").splitlines(), 1):
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                log.warning("%s:%d is torn or corrupt; skipped", self.path, number)
                continue
            if isinstance(entry, dict) and isinstance(entry.get("version"), str):
                out.append(entry)
        return out

    def exists(self) -> bool:
        return self.path.is_file()

    def state(self) -> JournalState:
        state = JournalState()
        for entry in self.events():
            version, event = entry["version"], entry.get("event")
            state.mentioned.add(version)
            if event == PROMOTED:
                state.promoted.add(version)
                state.retired.pop(version, None)
            elif event == VERIFIED:
                state.verified = [v for v in state.verified if v != version] + [version]
            elif event == RETIRED:
                state.retired[version] = str(entry.get("reason", "retired"))
                state.verified = [v for v in state.verified if v != version]
        return state
