"""The prediction log: what production received and answered, bounded on disk.

One JSON object a line in segments ``<folder>/segment-<n>.jsonl``. A segment is closed at
``monitor.log_segment_bytes`` and the oldest segments are deleted once the folder passes
``monitor.log_max_bytes``, so the log never holds more than a known amount whatever the
traffic. Two kinds of line: ``"kind": "prediction"`` (request id, time, model version,
the instance in its stored form, the answer) and ``"kind": "feedback"`` (a label that
refers to a logged prediction, with that prediction, for live accuracy).

The server appends (one lock, one process); readers (the feedback route, the monitor, the
CLI) only read, newest segment first, and skip a torn last line a kill may leave. A line
is written with one ``write`` call and flushed, not fsynced: the log is telemetry, and an
fsync per request would cost more than losing its last lines on a power cut.
"""

from __future__ import annotations

import base64
import json
import os
import random
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flywheel.core.loop_sections import MonitorConfig
from flywheel.families.base import StoredInstance

_SEGMENT = re.compile(r"^segment-(\d{12})\.jsonl$")
_ID = re.compile(r"^[0-9a-f]{32}$")


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def stored_entry(stored: StoredInstance) -> dict[str, Any]:
    """An instance's stored bytes as a JSON value: readable JSON where the stored form is
    JSON (text, tables), base64 otherwise (images)."""
    if stored.suffix.endswith(".json"):
        return {"suffix": stored.suffix, "json": json.loads(stored.data)}
    return {"suffix": stored.suffix, "b64": base64.b64encode(stored.data).decode("ascii")}


def stored_instance(entry: dict[str, Any]) -> StoredInstance:
    """The inverse of :func:`stored_entry`."""
    from flywheel.families.base import canonical_json

    suffix = str(entry["suffix"])
    if "json" in entry:
        return StoredInstance(canonical_json(entry["json"]), suffix)
    return StoredInstance(base64.b64decode(entry["b64"]), suffix)


def is_record_id(value: object) -> bool:
    return isinstance(value, str) and bool(_ID.match(value))


def segment_index(path: Path) -> int | None:
    """A segment file's number, or None for any other file."""
    match = _SEGMENT.match(path.name)
    return int(match[1]) if match else None


def parse_lines(text: str) -> Iterator[dict[str, Any]]:
    """The records of one segment's text, last line first; a torn line is skipped."""
    for line in reversed(text.splitlines()):
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a torn last line
        if isinstance(record, dict):
            yield record


class LogReader:
    """Lookups over :meth:`lines` (newest first), shared by this machine's log and the
    team remote's (:mod:`flywheel.monitor.shared_log`)."""

    def lines(self) -> Iterator[dict[str, Any]]:
        raise NotImplementedError

    def find(self, prediction_id: str) -> dict[str, Any] | None:
        if not is_record_id(prediction_id):
            return None
        for record in self.lines():
            if record.get("kind") == "prediction" and record.get("id") == prediction_id:
                return record
        return None

    def recent(self, limit: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The latest ``limit`` predictions and the feedback among the same lines, oldest
        first."""
        predictions: list[dict[str, Any]] = []
        feedback: list[dict[str, Any]] = []
        for record in self.lines():
            kind = record.get("kind")
            if kind == "prediction":
                if len(predictions) >= limit:
                    break
                predictions.append(record)
            elif kind == "feedback":
                feedback.append(record)
        return predictions[::-1], feedback[::-1]


class PredictionLog(LogReader):
    def __init__(self, folder: Path, monitor: MonitorConfig, seed: int | None = None) -> None:
        self.folder = Path(folder)
        self.segment_bytes = monitor.log_segment_bytes
        self.max_bytes = monitor.log_max_bytes
        self.sample_rate = monitor.sample_rate
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    def sampled(self) -> bool:
        """Whether this request's predictions are logged (``monitor.sample_rate``)."""
        return self.sample_rate >= 1.0 or self._random.random() < self.sample_rate

    # writing
    def segments(self) -> list[Path]:
        """The segment files, oldest first."""
        if not self.folder.is_dir():
            return []
        return sorted(p for p in self.folder.iterdir() if _SEGMENT.match(p.name))

    def _current(self, segments: list[Path], incoming: int) -> Path:
        if segments and segments[-1].stat().st_size + incoming <= self.segment_bytes:
            return segments[-1]
        index = (segment_index(segments[-1]) or 0) + 1 if segments else 1
        return self.folder / f"segment-{index:012d}.jsonl"

    def _enforce_cap(self, segments: list[Path]) -> None:
        sizes = [p.stat().st_size for p in segments]
        total = sum(sizes)
        # The newest segment always stays: it is being written.
        for path, size in zip(segments[:-1], sizes[:-1], strict=True):
            if total <= self.max_bytes:
                break
            path.unlink(missing_ok=True)
            total -= size

    def append(self, records: list[dict[str, Any]]) -> None:
        """Write ``records`` as lines; blocking (call it off the event loop)."""
        if not records:
            return
        data = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records).encode()
        with self._lock:
            self.folder.mkdir(parents=True, exist_ok=True)
            segments = self.segments()
            target = self._current(segments, len(data))
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
            if not segments or target != segments[-1]:
                segments.append(target)
            self._enforce_cap(segments)

    # reading
    def lines(self) -> Iterator[dict[str, Any]]:
        """Every record, newest first."""
        for segment in reversed(self.segments()):
            try:
                text = segment.read_text(encoding="utf-8", errors="replace")
            except FileNotFoundError:
                continue  # rotated away while we read
            yield from parse_lines(text)
