"""A dataset's content hash, computed exactly as DVC computes the one it records.

A run asks for the same folder's hash several times (the snapshot, the check that DVC
records it, the deploy's check that it is still the data validated). The answer is
remembered per folder under the folder's file signature: every file's inode, size and
mtime, the same facts DVC's state database trusts to skip re-reading a file. Any change to
the folder (a file added, removed, rewritten or touched) gives a new signature and a fresh
hash.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any


class SignatureMemo:
    """Answers remembered per key under the signature they were computed for; a lookup
    with any other signature misses. Bounded: past ``max_entries`` it starts over."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._entries: dict[Any, tuple[tuple[Any, ...], Any]] = {}
        self._guard = threading.Lock()

    def get(self, key: Any, signature: tuple[Any, ...] | None) -> Any | None:
        if signature is None:
            return None
        with self._guard:
            hit = self._entries.get(key)
        return hit[1] if hit is not None and hit[0] == signature else None

    def put(self, key: Any, signature: tuple[Any, ...] | None, value: Any) -> None:
        if signature is None:
            return
        with self._guard:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[key] = (signature, value)

    def clear(self) -> None:
        with self._guard:
            self._entries.clear()


_memo = SignatureMemo(64)


def _stat(path: str) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def content_signature(path: str) -> tuple[Any, ...] | None:
    """Inode, size and mtime of ``path`` and, for a folder, of every file below it (links
    followed); None when ``path`` cannot be read."""
    top = _stat(path)
    if top is None:
        return None
    if not os.path.isdir(path):
        return (top,)
    found: list[tuple[Any, ...]] = [top]
    for root, dirs, files in os.walk(path, followlinks=True):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(root, name)
            found.append((full, _stat(full)))
    return tuple(found)


def data_hash(path: Path) -> str:
    """The content hash DVC records for a file or folder (``<md5>.dir`` for folders)."""
    path = Path(path).resolve()
    if not path.exists():
        raise FileNotFoundError(f"dataset not found: {path}")
    # Taken before hashing: a file changed meanwhile leaves a signature no later call has.
    before = content_signature(str(path))
    hit = _memo.get(str(path), before)
    if hit is not None:
        return str(hit)
    digest = _dvc_hash(path)
    _memo.put(str(path), before, digest)
    return digest


def _dvc_hash(path: Path) -> str:
    from dvc_data.hashfile.build import build
    from dvc_data.hashfile.db import HashFileDB
    from dvc_objects.fs import MemoryFileSystem
    from dvc_objects.fs.local import LocalFileSystem

    odb = HashFileDB(MemoryFileSystem(), "/odb")
    _, _, obj = build(odb, str(path), LocalFileSystem(), "md5")
    return str(obj.hash_info.value)
