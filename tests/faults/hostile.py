"""The hostile-input tests' attack: cases, a runner that sends every case from a few
threads, the check of each answer and a summary row; and image bodies written by hand."""

from __future__ import annotations

import io
import json
import struct
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
from tests.faults.hostile_server import PROJECT, Watch

# --- the attack ------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    body: bytes
    expect: frozenset[int]
    path: str = "/v1/predict"
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()


def case(name: str, payload: Any, *expect: int, path: str = "/v1/predict") -> Case:
    """A case whose body is ``payload`` as JSON (bytes are sent as they are)."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return Case(name, body, frozenset(expect), path)


@dataclass
class Outcome:
    case: Case
    status: int
    body: str


def send(client: httpx.Client, item: Case) -> Outcome:
    try:
        headers = {"content-type": item.content_type, **dict(item.headers)}
        r = client.post(item.path, content=item.body, headers=headers)
    except httpx.HTTPError as err:
        return Outcome(item, 0, repr(err))
    return Outcome(item, r.status_code, r.text)


def attack(url: str, cases: list[Case], rounds: int, workers: int = 4) -> list[Outcome]:
    """Every case ``rounds`` times, from ``workers`` clients at once."""
    local = threading.local()

    def one(item: Case) -> Outcome:
        if not hasattr(local, "client"):
            local.client = httpx.Client(base_url=url, timeout=60)
        return send(local.client, item)

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(one, [c for _ in range(rounds) for c in cases]))


def problems(outcomes: list[Outcome]) -> list[str]:
    """Every answer that was not what its case expects, or not a readable JSON error."""
    bad = []
    for o in outcomes:
        if o.status not in o.case.expect:
            bad.append(f"{o.case.name}: {o.status} {o.body[:200]}")
        elif o.status >= 400:
            try:
                error = json.loads(o.body)
                assert error["error"] and error["kind"]
            except (ValueError, KeyError, AssertionError, TypeError):
                bad.append(f"{o.case.name}: {o.status} without a JSON error: {o.body[:200]}")
            else:
                if "/tmp/" in error["error"] or str(PROJECT) in error["error"]:
                    bad.append(f"{o.case.name}: a path in the message: {error['error']}")
    return bad


def summary(family: str, outcomes: list[Outcome], restarts: int, watch: Watch) -> dict[str, Any]:
    statuses = [o.status for o in outcomes]
    row = {
        "family": family,
        "cases": len({o.case.name for o in outcomes}),
        "requests": len(statuses),
        "2xx": sum(200 <= s < 300 for s in statuses),
        "4xx": sum(400 <= s < 500 for s in statuses),
        "503": statuses.count(503),
        "5xx_other": sum(s >= 500 and s != 503 for s in statuses),
        "no_answer": statuses.count(0),
        "restarts": restarts,
        **watch.figures(),
    }
    print("\nHOSTILE " + json.dumps(row))
    return row


# --- images ----------------------------------------------------------------------------


def encoded(image: Any, fmt: str, **options: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def _chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def png_by_hand(
    width: int, height: int, rows: bytes | None = None, depth: int = 1, extra: bytes = b""
) -> bytes:
    """A greyscale PNG written chunk by chunk. ``rows`` None: a real image of zeros,
    compressed row by row (an 11000 x 11000 one-bit image is about 15 KB)."""
    if rows is None:
        packer = zlib.compressobj(9)
        row = b"\x00" * (1 + (width * depth + 7) // 8)
        rows = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, depth, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + extra
        + _chunk(b"IDAT", rows)
        + _chunk(b"IEND", b"")
    )


def text_bomb_chunk(megabytes: int) -> bytes:
    """A zTXt chunk inflating to ``megabytes`` MB of text."""
    packer = zlib.compressobj(9)
    block = b"\x00" * (1 << 20)
    data = b"".join(packer.compress(block) for _ in range(megabytes)) + packer.flush()
    return _chunk(b"zTXt", b"Comment\x00\x00" + data)


def jpeg_claiming(width: int, height: int) -> bytes:
    """A small real JPEG whose frame header claims ``width`` x ``height`` pixels."""
    from PIL import Image

    data = bytearray(encoded(Image.new("L", (16, 16)), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)
