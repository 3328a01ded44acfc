"""Crash-safe file writes: a reader sees the old content or the new, never half of either."""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

_HELD: dict[Path, tuple[threading.RLock, list[int]]] = {}
_HELD_GUARD = threading.Lock()


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """An advisory lock across processes and threads; released when the holder exits, even by
    a crash. Re-entrant within a thread, so a deploy holding it may call ``promote``."""
    path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    with _HELD_GUARD:
        rlock, depth = _HELD.setdefault(path, (threading.RLock(), [0]))
    with rlock:
        if depth[0]:
            depth[0] += 1
            try:
                yield
            finally:
                depth[0] -= 1
            return
        with path.open("a") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            depth[0] = 1
            try:
                yield
            finally:
                depth[0] = 0
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
