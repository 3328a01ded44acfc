"""A dataset's content hash, computed exactly as DVC computes the one it records."""

from __future__ import annotations

from pathlib import Path


def data_hash(path: Path) -> str:
    """The content hash DVC records for a file or folder (``<md5>.dir`` for folders)."""
    from dvc_data.hashfile.build import build
    from dvc_data.hashfile.db import HashFileDB
    from dvc_objects.fs import MemoryFileSystem
    from dvc_objects.fs.local import LocalFileSystem

    path = Path(path).resolve()
    if not path.exists():
        raise FileNotFoundError(f"dataset not found: {path}")
    odb = HashFileDB(MemoryFileSystem(), "/odb")
    _, _, obj = build(odb, str(path), LocalFileSystem(), "md5")
    return str(obj.hash_info.value)
