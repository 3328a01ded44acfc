"""The registry's journal on the remote: one create-only object per event.

S3 has no append, and a shared journal file rewritten by two machines would lose one's
event; so each event is its own object, named by its time and a random suffix, written
with ``If-None-Match: *`` and never changed. Reading lists them in name order (time order
across machines, to the precision of their clocks) and folds them as :class:`Journal`
does. Event objects never change, so each is downloaded once per process.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flywheel.release.registry.journal import Journal
from flywheel.remote.objects import ObjectStore

log = logging.getLogger(__name__)


class RemoteJournal(Journal):
    def __init__(self, store: ObjectStore, prefix: str, local: Path) -> None:
        super().__init__(local)
        self.store, self.prefix = store, prefix.rstrip("/") + "/"
        self._seen: dict[str, dict[str, Any] | None] = {}

    def append(self, event: str, version: str, **detail: Any) -> None:
        entry = {
            "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "event": event,
            "version": version,
            **detail,
        }
        name = f"{self.prefix}{time.time_ns() // 1_000_000:013d}-{uuid.uuid4().hex[:12]}.json"
        body = json.dumps(entry, sort_keys=True).encode()
        self.store.put(name, body, f"recording {event} {version} in the journal", create_only=True)
        self._seen[name] = entry

    def events(self) -> list[dict[str, Any]]:
        names = sorted(self.store.keys(self.prefix, "reading the registry's journal"))
        out = []
        for name in names:
            if name not in self._seen:
                self._seen[name] = self._fetch(name)
            entry = self._seen[name]
            if entry is not None:
                out.append(entry)
        return out

    def _fetch(self, name: str) -> dict[str, Any] | None:
        blob = self.store.get(name, "reading the registry's journal")
        try:
            entry = json.loads(blob.body) if blob else None
        except ValueError:
            entry = None
        if not (isinstance(entry, dict) and isinstance(entry.get("version"), str)):
            log.warning("%s is corrupt; skipped", self.store.uri(name))
            return None
        return entry

    def exists(self) -> bool:
        return bool(self.store.keys(self.prefix, "reading the registry's journal"))
