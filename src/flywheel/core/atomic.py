"""Crash-safe file writes: a reader sees the old content or the new, never half of either.

Every durable write here is temp file, fsync, rename, fsync of the folder (without the last
step a power cut can lose the rename itself). Temporary names carry the writer's pid
(``.<name>.<pid>.<random>.tmp``), so :func:`sweep_temp` can tell the leftovers of a killed
writer from a file someone is writing right now.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import secrets
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

from flywheel.core.faults import fault_point

_HELD: dict[Path, tuple[threading.RLock, list[int]]] = {}
_HELD_GUARD = threading.Lock()
# ".<name>.<pid>.<hex>.tmp" (files) or ".<name>.<pid>.<hex>" (staging folders).
_TEMP = re.compile(r"^\..+\.(?P<pid>\d+)\.[0-9a-f]{8}(\.tmp)?$")


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_name(name: str, suffix: str = ".tmp") -> str:
    """A hidden sibling name for ``name`` that names this process as its writer."""
    return f".{name}.{os.getpid()}.{secrets.token_hex(4)}{suffix}"


def atomic_write_bytes(path: Path, data: bytes, *, fault: str | None = None) -> None:
    """Write ``data`` to ``path`` durably; ``fault`` names the fault point between the
    synced temp file and the rename (see :mod:`flywheel.core.faults`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / temp_name(path.name)
    try:
        with open(tmp, "xb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if fault:
            fault_point(fault)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str, *, fault: str | None = None) -> None:
    atomic_write_bytes(path, text.encode(), fault=fault)


def rename_durable(src: Path, dst: Path) -> None:
    """``os.rename`` that survives a power cut: both folders synced after the move."""
    os.rename(src, dst)
    fsync_dir(dst.parent)
    if src.parent != dst.parent:
        fsync_dir(src.parent)


def append_line(path: Path, line: str) -> None:
    """Append one line durably. A kill mid-append leaves at most a torn last line, which
    readers skip; the next append starts on a fresh line rather than gluing onto it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    created = not path.exists()
    with open(path, "ab+") as fh:
        torn = False
        if fh.seek(0, os.SEEK_END) > 0:
            fh.seek(-1, os.SEEK_END)
            torn = fh.read(1) != b"\n"
        fh.write((b"\n" if torn else b"") + line.rstrip("\n").encode() + b"\n")
        fh.flush()
        os.fsync(fh.fileno())
    if created:
        fsync_dir(path.parent)


def _writer_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_temp(folder: Path, *, any_writer: bool = False, recursive: bool = True) -> list[Path]:
    """Remove the temporary files and staging folders that killed writers left in
    ``folder`` (and below, if ``recursive``); with ``any_writer`` (the caller holds the
    lock every writer there takes) every ``*.tmp`` goes, whoever wrote it. Returns what
    was removed."""
    if not folder.is_dir():
        return []
    glob = folder.rglob if recursive else folder.glob
    removed: list[Path] = []
    for path in sorted({*glob(".*"), *glob("*.tmp")}):
        if not (path.exists() or path.is_symlink()):
            continue  # inside a folder removed a moment ago
        match = _TEMP.match(path.name)
        stale = (match is not None and not _writer_alive(int(match["pid"]))) or (
            any_writer and (match is not None or path.name.endswith(".tmp"))
        )
        if not stale:
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        removed.append(path)
    return removed


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
