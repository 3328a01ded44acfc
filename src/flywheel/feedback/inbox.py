"""The feedback inbox as a reviewer sees it: its records, and the decisions made on them.

A record is ``<inbox>/<folder>/<id>.json`` (the sidecar the server wrote) plus the
instance file it names (see :mod:`flywheel.serving.feedback`). Review never edits an
instance: a record that failed the suite gets its failed expectations written into its
sidecar (whole, atomically) and stays; an accepted or rejected one leaves the inbox, and
``<inbox>/.reviewed.jsonl`` keeps one line per decision (the per-sender and per-version
caps count accepted records from it).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flywheel.core.atomic import atomic_write_bytes
from flywheel.core.errors import InputError

if TYPE_CHECKING:
    from flywheel.core.workspace import Workspace

_ID = re.compile(r"^[0-9a-f]{32}$")
JOURNAL = ".reviewed.jsonl"


@dataclass(frozen=True)
class Record:
    sidecar: Path
    meta: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.meta["id"])

    @property
    def instance_file(self) -> Path:
        return self.sidecar.parent.parent / str(self.meta["file"])

    @property
    def status(self) -> str:
        review = self.meta.get("review") or {}
        return "failed" if review.get("failed") else "pending"

    def summary(self) -> dict[str, Any]:
        keep = ("id", "label", "received_at", "model_version", "sender", "prediction_id")
        out = {k: self.meta.get(k) for k in keep}
        out["status"] = self.status
        out["failed"] = (self.meta.get("review") or {}).get("failed", [])
        return out


class Inbox:
    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def records(self) -> list[Record]:
        """Every complete record (its instance file present), oldest first."""
        out: list[Record] = []
        if not self.folder.is_dir():
            return out
        for sidecar in self.folder.glob("*/*.json"):
            if sidecar.name.endswith(".instance.json") or not _ID.match(sidecar.stem):
                continue
            try:
                meta = json.loads(sidecar.read_text())
            except (OSError, ValueError):
                continue
            record = Record(sidecar, meta)
            if isinstance(meta, dict) and record.instance_file.is_file():
                out.append(record)
        return sorted(out, key=lambda r: (str(r.meta.get("received_at", "")), r.id))

    def select(self, ids: list[str], everything: bool) -> list[Record]:
        """The records named by ``ids`` (or all); an unknown id is an :class:`InputError`."""
        records = self.records()
        if everything:
            return records
        if not ids:
            raise InputError(
                "name the feedback records to review (ids from `flywheel feedback list`) "
                "or pass --all"
            )
        by_id = {r.id: r for r in records}
        unknown = [i for i in ids if i not in by_id]
        if unknown:
            raise InputError(
                f"no feedback record {unknown[0]} in {self.folder}; "
                "`flywheel feedback list` shows them"
            )
        return [by_id[i] for i in ids]

    def mark_failed(self, record: Record, failed: list[str]) -> None:
        meta = {
            **record.meta,
            "review": {"failed": failed, "reviewed_at": _now()},
        }
        atomic_write_bytes(record.sidecar, (json.dumps(meta, indent=2) + "\n").encode())

    def remove(self, record: Record, decision: str, **extra: Any) -> None:
        """Take ``record`` out of the inbox after ``decision``; the journal keeps it."""
        line = {
            "id": record.id,
            "decision": decision,
            "at": _now(),
            "sender": record.meta.get("sender"),
            "model_version": record.meta.get("model_version"),
            **extra,
        }
        self.folder.mkdir(parents=True, exist_ok=True)
        with (self.folder / JOURNAL).open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(line) + "\n")
        # The instance file first: the server treats it as the record's commit point.
        record.instance_file.unlink(missing_ok=True)
        record.sidecar.unlink(missing_ok=True)

    def accepted_counts(self) -> tuple[Counter[str], Counter[str]]:
        """Accepted records so far, by sender and by model version."""
        senders: Counter[str] = Counter()
        versions: Counter[str] = Counter()
        journal = self.folder / JOURNAL
        if not journal.is_file():
            return senders, versions
        for line in journal.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("decision") == "accepted":
                senders[str(entry.get("sender"))] += 1
                versions[str(entry.get("model_version"))] += 1
        return senders, versions


def open_inbox(ws: Workspace) -> Inbox:
    """The workspace's inbox; with a team remote, the shared one (every replica's)."""
    folder = ws.layout.feedback_inbox or ws.layout.root / "feedback"
    if not ws.params.remote.enabled:
        return Inbox(folder)
    from flywheel.feedback.shared_inbox import SharedInbox

    return SharedInbox(folder, ws.params.remote)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
