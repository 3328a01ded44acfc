"""IDX files (the MNIST format) read without third-party code, and turned into an image folder.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of
dimensions), one big-endian ``uint32`` per dimension, then the values in C order,
big-endian. Files may be gzip-compressed (detected from their first bytes, not their name).

:func:`read_idx_pair` checks an images/labels pair; :func:`import_idx` writes it as
``<dest>/<label>/<index>.png`` through the deterministic PNG encoder, atomically: into a
hidden temporary folder beside ``dest``, renamed into place once every file is written.
"""

from __future__ import annotations

import gzip
import os
import secrets
import shutil
import struct
import zlib
from dataclasses import dataclass
from io import BufferedIOBase
from pathlib import Path

import numpy as np

from flywheel.core.errors import FlywheelError
from flywheel.datasets.png import write_png_folder

# Type code -> element type (big-endian where it matters), per the format's definition.
IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20


class IdxError(FlywheelError):
    """An IDX file is unreadable or malformed, or does not fit its partner file."""

    def __init__(self, path: Path | str, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


class DestinationNotEmptyError(FlywheelError, FileExistsError):
    """The destination is a file, or a folder holding files (they may be a user's data)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        what = "is not empty" if self.path.is_dir() else "exists and is not a folder"
        super().__init__(f"{path} {what}; choose a new folder (nothing was written)")


@dataclass(frozen=True)
class IdxHeader:
    dtype: np.dtype
    shape: tuple[int, ...]

    @property
    def count(self) -> int:
        """Items along the first dimension (images, or labels)."""
        return self.shape[0]

    @property
    def item_bytes(self) -> int:
        return int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize


def _open(path: Path) -> BufferedIOBase:
    if not path.is_file():
        raise IdxError(path, "file not found" if not path.exists() else "not a regular file")
    try:
        with path.open("rb") as probe:
            compressed = probe.read(2) == _GZIP_MAGIC
        return gzip.open(path, "rb") if compressed else path.open("rb")
    except OSError as err:
        raise IdxError(path, f"cannot read: {err.strerror or err}") from None


def _read_exactly(stream: BufferedIOBase, path: Path, n: int, what: str) -> bytes:
    """``n`` bytes, read in chunks so a header claiming a huge size cannot exhaust memory."""
    parts: list[bytes] = []
    got = 0
    try:
        while got < n:
            part = stream.read(min(_CHUNK, n - got))
            if not part:
                break
            parts.append(part)
            got += len(part)
    except (EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise IdxError(path, f"corrupt gzip stream while reading {what}: {err}") from None
    except OSError as err:
        raise IdxError(path, f"cannot read {what}: {err.strerror or err}") from None
    if got < n:
        raise IdxError(path, f"truncated: {what} needs {n} bytes, the file holds {got}")
    return b"".join(parts)


def _header(stream: BufferedIOBase, path: Path) -> IdxHeader:
    magic = _read_exactly(stream, path, 4, "the magic number")
    if magic[:2] != b"\x00\x00":
        raise IdxError(
            path,
            f"bad magic number 0x{magic.hex()}: an IDX file starts with two zero bytes"
            " (is this an IDX file?)",
        )
    code, ndim = magic[2], magic[3]
    if code not in IDX_TYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_TYPES)
        raise IdxError(path, f"unknown type code 0x{code:02X} (known: {known})")
    if ndim == 0:
        raise IdxError(path, "the header declares zero dimensions")
    dims = struct.unpack(f">{ndim}I", _read_exactly(stream, path, 4 * ndim, "the dimensions"))
    return IdxHeader(IDX_TYPES[code], tuple(int(d) for d in dims))


def read_idx_header(path: Path | str) -> IdxHeader:
    """The element type and shape an IDX file declares, without reading its data."""
    path = Path(path)
    with _open(path) as stream:
        return _header(stream, path)


def read_idx(path: Path | str, *, limit: int | None = None) -> np.ndarray:
    """The array an IDX file holds (native byte order), or its first ``limit`` items.

    Without ``limit`` the data must fill the file exactly: missing or trailing bytes are
    an :class:`IdxError`. With it, only the bytes of the first ``limit`` items are read.
    """
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be a positive number of items, got {limit}")
    path = Path(path)
    with _open(path) as stream:
        header = _header(stream, path)
        count = header.count if limit is None else min(limit, header.count)
        data = _read_exactly(stream, path, count * header.item_bytes, "the data")
        if limit is None or limit >= header.count:
            extra = _peek_rest(stream, path)
            if extra:
                more = " or more" if len(extra) == _CHUNK else ""
                raise IdxError(path, f"{len(extra)}{more} trailing byte(s) after the declared data")
    array = np.frombuffer(data, dtype=header.dtype).reshape((count, *header.shape[1:]))
    return np.array(array, dtype=header.dtype.newbyteorder("="))  # writable, native order


def _peek_rest(stream: BufferedIOBase, path: Path) -> bytes:
    try:
        return stream.read(_CHUNK)
    except (EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise IdxError(path, f"corrupt gzip stream after the data: {err}") from None


def read_idx_pair(
    images: Path | str, labels: Path | str, *, limit: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(N, H, W)`` grey or ``(N, H, W, 3)`` RGB ``uint8`` images and their ``(N,)`` labels.

    Both headers are checked before any data is read: the images must be unsigned bytes
    in three dimensions (or four, the last being 3), the labels integers in one, and both
    must declare the same number of items.
    """
    images, labels = Path(images), Path(labels)
    img, lab = read_idx_header(images), read_idx_header(labels)
    if img.dtype != np.uint8:
        raise IdxError(images, f"images must be unsigned bytes (type 0x08), got {img.dtype.name}")
    if not (len(img.shape) == 3 or (len(img.shape) == 4 and img.shape[3] == 3)):
        raise IdxError(
            images,
            f"images must have shape (N, H, W) or (N, H, W, 3), the header says {img.shape}",
        )
    if min(img.shape) == 0:
        raise IdxError(images, f"holds no pixels: the header says shape {img.shape}")
    if len(lab.shape) != 1:
        raise IdxError(labels, f"labels must have one dimension, the header says {lab.shape}")
    if lab.dtype.kind not in "iu":
        raise IdxError(labels, f"labels must be integers, got {lab.dtype.name}")
    if img.count != lab.count:
        raise IdxError(
            labels,
            f"holds {lab.count} labels but {images.name} holds {img.count} images",
        )
    return read_idx(images, limit=limit), read_idx(labels, limit=limit).astype(np.int64)


def import_idx(
    images: Path | str, labels: Path | str, dest: Path | str, *, limit: int | None = None
) -> int:
    """Write an IDX images/labels pair as the image folder ``dest/<label>/<index>.png``.

    ``dest`` must not exist or be an empty folder. Everything is read and checked first,
    then written into a hidden temporary folder beside ``dest`` and renamed into place, so
    ``dest`` either holds the whole dataset or is left as it was. Returns the image count.
    """
    dest = Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise DestinationNotEmptyError(dest)
    pixels, ids = read_idx_pair(images, labels, limit=limit)
    dest.parent.mkdir(parents=True, exist_ok=True)
    # Hidden (the manifest skips dot-folders) and created with the umask's permissions,
    # unlike tempfile.mkdtemp's 0700, since it becomes the dataset folder itself.
    tmp = dest.parent / f".{dest.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    tmp.mkdir()
    try:
        n = write_png_folder(tmp, pixels, [str(int(label)) for label in ids])
        os.replace(tmp, dest)  # atomic; replaces an empty folder on POSIX
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return n
