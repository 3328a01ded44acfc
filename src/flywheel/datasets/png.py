"""A minimal, byte-deterministic PNG encoder.

Pillow's output depends on the zlib it was built with, so the same pixels can give other
bytes on another machine and ``data.dvc`` would no longer match. Stored (uncompressed)
deflate blocks have exactly one encoding, so these files are identical everywhere.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_MAX_STORED = 0xFFFF


def _chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def _stored_zlib(raw: bytes) -> bytes:
    out = bytearray(b"\x78\x01")
    blocks = [raw[i : i + _MAX_STORED] for i in range(0, len(raw), _MAX_STORED)] or [b""]
    for i, block in enumerate(blocks):
        final = 1 if i == len(blocks) - 1 else 0
        n = len(block)
        out += bytes([final]) + struct.pack("<HH", n, n ^ 0xFFFF) + block
    out += struct.pack(">I", zlib.adler32(raw) & 0xFFFFFFFF)
    return bytes(out)


def encode_png(pixels: np.ndarray) -> bytes:
    """Encode an ``(H, W)`` grey or ``(H, W, 3)`` RGB ``uint8`` array."""
    if pixels.dtype != np.uint8:
        raise ValueError(f"PNG pixels must be uint8, got {pixels.dtype}")
    if pixels.ndim == 2:
        colour_type, h, w = 0, *pixels.shape
    elif pixels.ndim == 3 and pixels.shape[2] == 3:
        colour_type, h, w = 2, pixels.shape[0], pixels.shape[1]
    else:
        raise ValueError(f"PNG pixels must be (H, W) or (H, W, 3), got {pixels.shape}")
    rows = pixels.reshape(h, -1)
    # Filter type 0 (None) on every scanline: deterministic and trivially decodable.
    raw = b"".join(b"\x00" + row.tobytes() for row in rows)
    header = struct.pack(">IIBBBBB", w, h, 8, colour_type, 0, 0, 0)
    return (
        _SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", _stored_zlib(raw))
        + _chunk(b"IEND", b"")
    )


def write_png_folder(target: Path, images: Iterable[np.ndarray], labels: Sequence[str]) -> int:
    """Write image ``i`` to ``target/<labels[i]>/<i>.png``; returns the number written.

    ``i`` is zero-padded to at least four digits (as wide as the largest index needs), so
    files sort in order. Each file lands under a temporary name first, so an interrupted run
    never leaves a truncated PNG behind. The caller decides whether ``target`` may be written.
    """
    target = Path(target)
    width = max(4, len(str(len(labels) - 1)))
    for label in sorted(set(labels)):
        (target / label).mkdir(parents=True, exist_ok=True)
    n = 0
    for index, (image, label) in enumerate(zip(images, labels, strict=True)):
        path = target / label / f"{index:0{width}d}.png"
        tmp = path.with_suffix(".png.tmp")
        tmp.write_bytes(encode_png(image))
        os.replace(tmp, path)
        n += 1
    return n
