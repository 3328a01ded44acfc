"""The serving benchmark's load generator: raw-asyncio closed-loop clients on keep-alive
connections, each sending a fixed request a fixed number of times, and latency figures.
Given several requests, client ``i`` sends the ``i``-th (round robin): mixed traffic."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

_TIMING = re.compile(rb"(?:ort|torch);dur=([0-9.]+)")
_LENGTH = re.compile(rb"content-length:\s*(\d+)", re.IGNORECASE)


def request_bytes(body: bytes) -> bytes:
    head = (
        "POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _client(
    port: int, request: bytes, n: int, deadline: float, out: dict[str, list[float]]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for _ in range(n):
            if time.perf_counter() > deadline:
                return
            start = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = _LENGTH.search(head)
            await reader.readexactly(int(length.group(1)) if length else 0)
            elapsed = time.perf_counter() - start
            if head.split(b" ", 2)[1] != b"200":
                out["errors"].append(elapsed)
                continue
            out["latency"].append(elapsed)
            timing = _TIMING.search(head)
            out["runtime"].append(float(timing.group(1)) / 1000 if timing else float("nan"))
    finally:
        writer.close()


async def _load(
    port: int, request: bytes | Sequence[bytes], concurrency: int, total: int, budget_s: float
) -> dict[str, Any]:
    mix = [request] if isinstance(request, bytes) else list(request)
    out: dict[str, list[float]] = {"latency": [], "runtime": [], "errors": []}
    per_client = -(-total // concurrency)
    start = time.perf_counter()
    await asyncio.gather(
        *(
            _client(port, mix[i % len(mix)], per_client, start + budget_s, out)
            for i in range(concurrency)
        )
    )
    wall = time.perf_counter() - start
    lat = np.asarray(out["latency"])
    runtime = np.asarray(out["runtime"])
    done = len(lat)
    return {
        "requests": done,
        "errors": len(out["errors"]),
        "seconds": round(wall, 3),
        "req_per_s": round(done / wall, 1) if wall else 0.0,
        "p50_ms": round(float(np.percentile(lat, 50)) * 1000, 3) if done else None,
        "p99_ms": round(float(np.percentile(lat, 99)) * 1000, 3) if done else None,
        "mean_ms": round(float(lat.mean()) * 1000, 3) if done else None,
        # Time inside ONNX Runtime (flywheel) or the eager forward (baseline), per request.
        "runtime_mean_ms": round(float(np.nanmean(runtime)) * 1000, 3) if done else None,
        "outside_runtime_share": round(1 - float(np.nansum(runtime) / lat.sum()), 4)
        if done
        else None,
    }


def measure(
    port: int,
    request: bytes | Sequence[bytes],
    concurrency: int,
    total: int,
    warmup: int,
    budget_s: float,
) -> dict[str, Any]:
    asyncio.run(_load(port, request, concurrency, warmup, budget_s / 4))
    return asyncio.run(_load(port, request, concurrency, total, budget_s))
