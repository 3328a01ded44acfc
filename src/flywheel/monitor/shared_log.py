"""The prediction log on the team remote: every replica's log, read as one.

A replica writes its log on its own disk as on one machine (:mod:`.prediction_log`) and
ships what it has appended every ``remote.log_ship_interval_s``: the bytes of each segment
past what is already on the remote, up to the last complete line, become one create-only
object (``If-None-Match: *``)::

    <remote.url>/predictions/<replica>/<shipped at>-<segment>-<start>-<end>.jsonl

so nothing on the remote is ever overwritten and a torn last line is never shipped; the
chunks of a segment the replica's own log has rotated away (``monitor.log_max_bytes``)
are deleted, so the remote keeps what each replica keeps. The
replica's name is kept beside its log (a restart ships on from where the remote ends, by
the offsets in its own keys); a store that does not answer leaves the lines here for the
next try. The monitor on any machine, and feedback that names a prediction another replica
answered, read the chunks newest first; a chunk is immutable, so each is downloaded once
into a local cache.
"""

from __future__ import annotations

import contextlib
import re
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flywheel.core.atomic import atomic_write_bytes
from flywheel.monitor.prediction_log import LogReader, PredictionLog, parse_lines, segment_index
from flywheel.remote.objects import ObjectStore, PreconditionFailed

_REPLICA = re.compile(r"^[0-9a-f]{12}$")
_CHUNK = re.compile(
    r"^(?P<stamp>\d{8}T\d{12})-(?P<segment>\d{12})-(?P<start>\d{12})-(?P<end>\d{12})\.jsonl$"
)


def replica_name(folder: Path) -> str:
    """This log's replica name: made once, kept in ``<folder>/replica``."""
    path = folder / "replica"
    try:
        name = path.read_text().strip()
        if _REPLICA.match(name):
            return name
    except FileNotFoundError:
        pass
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, uuid.uuid4().hex[:12].encode())
    return path.read_text().strip()


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")


def _complete_lines(path: Path, start: int) -> bytes:
    """The segment's bytes past ``start`` up to its last complete line (b"" if gone)."""
    try:
        with path.open("rb") as f:
            f.seek(start)
            data = f.read()
    except FileNotFoundError:
        return b""  # rotated away (the log's size cap)
    return data[: data.rfind(b"\n") + 1]


class LogShipper:
    def __init__(self, log: PredictionLog, store: ObjectStore) -> None:
        self.log = log
        self.store = store
        self.replica = replica_name(log.folder)
        self.prefix = store.key("predictions", self.replica) + "/"
        # This replica's chunks on the remote: key -> (segment, end offset); None: not read.
        self._chunks: dict[str, tuple[int, int]] | None = None
        self._lock = threading.Lock()

    def _on_remote(self) -> dict[str, tuple[int, int]]:
        chunks = {}
        for key in self.store.keys(self.prefix, "reading which prediction logs are shipped"):
            match = _CHUNK.match(key.rsplit("/", 1)[-1])
            if match:
                chunks[key] = (int(match["segment"]), int(match["end"]))
        return chunks

    @staticmethod
    def _shipped(chunks: dict[str, tuple[int, int]]) -> dict[int, int]:
        """Bytes of each segment already on the remote."""
        shipped: dict[int, int] = {}
        for segment, end in chunks.values():
            shipped[segment] = max(shipped.get(segment, 0), end)
        return shipped

    def _trim(self, chunks: dict[str, tuple[int, int]]) -> None:
        """Delete the chunks of segments older than any this replica still holds."""
        held = [i for i in map(segment_index, self.log.segments()) if i is not None]
        if not held:
            return
        oldest = min(held)
        for key, (segment, _) in sorted(chunks.items()):
            if segment < oldest:
                self.store.delete(key, "trimming the shipped prediction log")
                del chunks[key]

    def backlog(self) -> int:
        """Bytes of complete lines here that are not on the remote yet (asks the remote)."""
        shipped = self._shipped(self._on_remote())
        return sum(
            len(_complete_lines(path, shipped.get(segment_index(path) or 0, 0)))
            for path in self.log.segments()
        )

    def ship(self) -> int:
        """Upload every complete line not yet on the remote; the bytes shipped. Raises
        :class:`~flywheel.core.errors.RemoteError` (what is not shipped stays here)."""
        with self._lock:
            if self._chunks is None:
                self._chunks = self._on_remote()
            shipped = self._shipped(self._chunks)
            total = 0
            for path in self.log.segments():
                segment = segment_index(path)
                if segment is not None:
                    total += self._ship_segment(path, segment, shipped.get(segment, 0))
            self._trim(self._chunks)
            return total

    def _ship_segment(self, path: Path, segment: int, start: int) -> int:
        data = _complete_lines(path, start)
        if not data or self._chunks is None:
            return 0
        end = start + len(data)
        key = f"{self.prefix}{_stamp()}-{segment:012d}-{start:012d}-{end:012d}.jsonl"
        # A lost create-only write is the same bytes under the same name: already there.
        with contextlib.suppress(PreconditionFailed):
            self.store.put(key, data, "shipping the prediction log", create_only=True)
        self._chunks[key] = (segment, end)
        return len(data)


class SharedPredictionLog(LogReader):
    """Every replica's shipped log, newest chunk first (by when it was shipped), read up to
    ``max_bytes`` of chunks (the newest): a lookup costs what a local log's would."""

    def __init__(self, store: ObjectStore, cache: Path, max_bytes: int) -> None:
        self.store = store
        self.cache = cache
        self.max_bytes = max_bytes
        self.prefix = store.key("predictions") + "/"

    def _chunks(self) -> list[tuple[str, str]]:
        """(key, cache name) of every chunk, newest first."""
        found = []
        for key in self.store.keys(self.prefix, "reading the shared prediction log"):
            replica, _, name = key[len(self.prefix) :].partition("/")
            match = _CHUNK.match(name)
            if match and _REPLICA.match(replica):
                found.append((match["stamp"], replica, key, f"{replica}-{name}"))
        found.sort(reverse=True)
        return [(key, cached) for _, _, key, cached in found]

    def _text(self, key: str, cached: str) -> str:
        path = self.cache / cached
        if not path.is_file():
            blob = self.store.get(key, "reading the shared prediction log")
            if blob is None:
                return ""  # removed since it was listed
            self.cache.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(path, blob.body)
        return path.read_text(encoding="utf-8", errors="replace")

    def lines(self) -> Iterator[dict[str, Any]]:
        chunks = self._chunks()
        self._prune({cached for _, cached in chunks})
        read = 0
        for key, cached in chunks:
            if read >= self.max_bytes:
                return
            text = self._text(key, cached)
            read += len(text)
            yield from parse_lines(text)

    def _prune(self, listed: set[str]) -> None:
        """Drop cached chunks the remote no longer has, so the cache stays the remote's size."""
        if self.cache.is_dir():
            for path in self.cache.iterdir():
                if path.suffix == ".jsonl" and path.name not in listed:
                    with contextlib.suppress(OSError):
                        path.unlink()
