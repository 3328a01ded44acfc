"""The feedback inbox in team mode: what every replica stored on the remote, reviewed once.

Replicas upload each record create-only under ``<remote.url>/feedback/<folder>/``
(:mod:`flywheel.serving.remote_feedback`). Before the reviewer sees the inbox, the
records this machine lacks are brought in (sidecar, then the instance: the instance
file is the local commit point as well). A decision is written to the remote first, as
one create-only object ``<remote.url>/feedback-reviewed/<id>.json``, then made here; a
record decided on another machine is taken out of this inbox at the next look, so no
record joins the data twice. Keys are checked before anything is written: a folder or
file name from the store never escapes the inbox.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

from flywheel.core.atomic import atomic_write_bytes
from flywheel.core.remote_section import RemoteConfig
from flywheel.feedback.inbox import Inbox, Record
from flywheel.remote.objects import ObjectStore, PreconditionFailed

log = logging.getLogger(__name__)
_NAME = re.compile(r"^(?P<id>[0-9a-f]{32})(?P<suffix>(\.[A-Za-z0-9]{1,16}){1,2})$")
_FOLDER = re.compile(r"^[^./\\\x00][^/\\\x00]{0,254}$")


class SharedInbox(Inbox):
    def __init__(self, folder: Path, remote: RemoteConfig) -> None:
        super().__init__(folder)
        self.store = ObjectStore(remote)
        self.records_prefix = self.store.key("feedback") + "/"
        self.decisions_prefix = self.store.key("feedback-reviewed") + "/"

    def records(self) -> list[Record]:
        self.sync()
        return super().records()

    def _remote(self) -> tuple[dict[str, dict[str, str]], set[str]]:
        """Remote records (id -> {"sidecar"|"instance": key, "folder": name}), decided ids."""
        found: dict[str, dict[str, str]] = {}
        for key in self.store.keys(self.records_prefix, "reading the shared feedback inbox"):
            folder, _, name = key[len(self.records_prefix) :].partition("/")
            match = _NAME.match(name)
            if not match or not _FOLDER.match(folder):
                continue
            part = "sidecar" if match["suffix"] == ".json" else "instance"
            found.setdefault(match["id"], {"folder": folder})[part] = key
        decided = {
            key.rsplit("/", 1)[-1].removesuffix(".json")
            for key in self.store.keys(self.decisions_prefix, "reading feedback decisions")
        }
        return found, decided

    def sync(self) -> int:
        """Bring in the remote's undecided records; drop ones decided elsewhere."""
        found, decided = self._remote()
        local = {r.id: r for r in super().records()}
        for record_id in decided & set(local):
            record = local[record_id]
            record.instance_file.unlink(missing_ok=True)
            record.sidecar.unlink(missing_ok=True)
        brought = 0
        for record_id, parts in sorted(found.items()):
            if record_id in decided or record_id in local or len(parts) < 3:
                continue  # decided, here already, or still being uploaded
            brought += self._bring(record_id, parts)
        if brought:
            log.info("%d feedback record(s) brought in from %s", brought, self.store.url)
        return brought

    def _bring(self, record_id: str, parts: dict[str, str]) -> int:
        folder = self.folder / parts["folder"]
        instance_name = parts["instance"].rsplit("/", 1)[-1]
        sidecar = self.store.get(parts["sidecar"], "reading a shared feedback record")
        instance = self.store.get(parts["instance"], "reading a shared feedback record")
        if sidecar is None or instance is None:
            return 0
        try:
            meta = json.loads(sidecar.body)
        except ValueError:
            meta = None
        expected = {"id": record_id, "file": f"{parts['folder']}/{instance_name}"}
        if not isinstance(meta, dict) or {k: meta.get(k) for k in expected} != expected:
            log.warning("shared feedback record %s does not name its own files: skipped", record_id)
            return 0
        atomic_write_bytes(folder / f"{record_id}.json", sidecar.body)
        atomic_write_bytes(folder / instance_name, instance.body)
        return 1

    def remove(self, record: Record, decision: str, **extra: Any) -> None:
        body = json.dumps({"id": record.id, "decision": decision, **extra}).encode()
        try:
            self.store.put(
                f"{self.decisions_prefix}{record.id}.json",
                body,
                "recording a feedback decision",
                create_only=True,
            )
        except PreconditionFailed:
            log.warning("feedback record %s was decided on another machine too", record.id)
        super().remove(record, decision, **extra)
