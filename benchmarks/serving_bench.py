"""Serving benchmark: ``flywheel serve`` against a plain FastAPI + eager PyTorch endpoint.

One run, one model: the project's ConvNet (random weights; speed does not depend on them) is
exported with :func:`flywheel.stages.export.export_onnx`, registered and promoted in a temporary
registry, and its weights are loaded by the baseline too. Both servers run as real uvicorn
subprocesses on free loopback ports and decode inputs with the same
:mod:`flywheel.families.image.pixels` code; they differ only in the serving path:

* flywheel: micro-batching, ONNX Runtime on a worker thread, hot-swappable model;
* baseline: a synchronous FastAPI route (FastAPI's thread pool) running the network
  eagerly, one forward pass per request.

A closed-loop client (raw HTTP/1.1 keep-alive connections on asyncio, so the client itself
costs little) sends a fixed number of single-image requests after a warm-up at each
concurrency, and reads the server's ``Server-Timing`` header to split each latency into
time inside the runtime and time outside it. Writes ``benchmarks/results/serving.json`` and
prints a markdown table. Every phase has a deadline, so a run is bounded in time.

    python -m benchmarks.serving_bench [--quick]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.serving_load import measure, request_bytes
from benchmarks.serving_servers import (
    LABELS,
    SIZE,
    build_workspace,
    free_port,
    start_server,
    stop_server,
    wait_ready,
)

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "serving.json"


CONCURRENCY = (1, 8, 32)


# --- report ----------------------------------------------------------------------------


def markdown(results: dict[str, Any]) -> str:
    rows = [
        "| server | concurrency | req/s | p50 ms | p99 ms | errors | share outside runtime |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for server, levels in results["servers"].items():
        for c, r in levels.items():
            rows.append(
                f"| {server} | {c} | {r['req_per_s']} | {r['p50_ms']} | {r['p99_ms']} | "
                f"{r['errors']} | {r['outside_runtime_share']:.1%} |"
            )
    s = results["summary"]
    rows += [
        "",
        f"- throughput ratio at concurrency 32 (flywheel / baseline): **{s['rps_ratio_c32']}x**",
        f"- p99 at concurrency 32: flywheel {s['p99_ms_c32']['flywheel']} ms, "
        f"baseline {s['p99_ms_c32']['baseline']} ms",
        "- share of latency outside ONNX Runtime at concurrency 1: "
        f"**{s['outside_ort_share_c1']:.1%}**",
    ]
    return "\n".join(rows)


def run(quick: bool) -> dict[str, Any]:
    total, warmup, budget = (1500, 300, 20.0) if quick else (5000, 500, 60.0)
    body = json.dumps({"instances": [{"b64": base64.b64encode(_sample_png()).decode()}]}).encode()
    request = request_bytes(body)
    with tempfile.TemporaryDirectory(prefix="flywheel-bench-") as tmp:
        root = Path(tmp)
        build_workspace(root)
        procs: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
        try:
            for kind in ("flywheel", "baseline"):
                port = free_port()
                procs[kind] = (start_server(kind, root, port), port)
            for proc, port in procs.values():
                wait_ready(port, proc)
            servers: dict[str, dict[str, Any]] = {kind: {} for kind in procs}
            # Interleaved per level so drift on a shared machine hits both servers alike.
            for c in CONCURRENCY:
                for kind, (_, port) in procs.items():
                    servers[kind][str(c)] = measure(port, request, c, total, warmup, budget)
        finally:
            for proc, _ in procs.values():
                stop_server(proc)
    fly, base = servers["flywheel"], servers["baseline"]
    return {
        "quick": quick,
        "requests_per_level": total,
        "warmup_per_level": warmup,
        "instances_per_request": 1,
        "model": f"ConvNet 1x{SIZE}x{SIZE} -> {len(LABELS)} (random weights)",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "providers": _providers(),
        "servers": servers,
        "summary": {
            "rps_ratio_c32": round(fly["32"]["req_per_s"] / max(base["32"]["req_per_s"], 1e-9), 2),
            "p99_ms_c32": {"flywheel": fly["32"]["p99_ms"], "baseline": base["32"]["p99_ms"]},
            "outside_ort_share_c1": fly["1"]["outside_runtime_share"],
        },
    }


def _sample_png() -> bytes:
    from flywheel.datasets.png import encode_png

    return encode_png(np.random.default_rng(0).integers(0, 256, (SIZE, SIZE), dtype=np.uint8))


def _providers() -> list[str]:
    from flywheel.core.ort import available_providers

    return available_providers()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="fewer requests per level (CI smoke run)"
    )
    args = parser.parse_args(argv)
    results = run(args.quick)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(markdown(results))
    print(f"\nwritten {RESULTS.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
