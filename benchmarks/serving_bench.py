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
import asyncio
import base64
import json
import os
import platform
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "serving.json"
LABELS = tuple(str(i) for i in range(10))
SIZE = 8
CONCURRENCY = (1, 8, 32)
START_TIMEOUT_S = 60.0
_TIMING = re.compile(rb"(?:ort|torch);dur=([0-9.]+)")
_LENGTH = re.compile(rb"content-length:\s*(\d+)", re.IGNORECASE)


# --- the model and the two servers ------------------------------------------------------


def build_workspace(root: Path, seed: int = 0) -> None:
    """Registry with the exported ConvNet in production, and the same weights for the baseline."""
    import torch
    import yaml

    from flywheel.families.image.network import ConvNet
    from flywheel.families.image.pixels import PreprocessingSpec
    from flywheel.nn.onnx_export import export_onnx
    from flywheel.release.registry import Registry

    torch.manual_seed(seed)
    net = ConvNet(1, SIZE, len(LABELS)).eval()
    torch.save(net.state_dict(), root / "weights.pt")
    spec = PreprocessingSpec(size=SIZE, mode="L", mean=(0.3,), std=(0.25,), labels=LABELS)
    spec.save(root / "preprocessing.json")
    onnx_path = export_onnx(net, spec.input_shape, root / "model.onnx")
    registry = Registry(root / "registry")
    card = {
        "task": "image_classification",
        "labels": LABELS,
        "data_hash": "benchmark",
        "params_hash": "benchmark",
        "code_version": "benchmark",
        "variant": "fp32",
        "recipe": {},
        "metrics": {},
        "params": {},
        "evaluation": {},
    }
    version = registry.register(onnx_path, root / "preprocessing.json", card).version
    registry.promote(version)
    params = {
        "task": "image_classification",
        "validate": {"labels": list(LABELS)},
        "paths": {"registry": str(root / "registry"), "artifacts": str(root / "artifacts")},
        "data": {"path": str(root / "data"), "feedback_inbox": str(root / "feedback")},
    }
    (root / "params.yaml").write_text(yaml.safe_dump(params))


def baseline_app(root: Path) -> Any:
    """What a first serving attempt usually looks like: no batching, eager PyTorch."""
    import torch
    from fastapi import Body, FastAPI
    from fastapi.responses import JSONResponse

    from flywheel.families.image.network import ConvNet
    from flywheel.families.image.pixels import PreprocessingSpec, preprocess_bytes

    spec = PreprocessingSpec.load(root / "preprocessing.json")
    net = ConvNet(spec.channels, spec.size, len(spec.labels))
    net.load_state_dict(torch.load(root / "weights.pt", weights_only=True))
    net.eval()
    app = FastAPI()

    @app.get("/readyz")
    def readyz() -> dict[str, bool]:
        return {"ready": True}

    @app.post("/v1/predict")
    def predict(payload: dict[str, Any] = Body(...)) -> JSONResponse:
        x = np.stack(
            [preprocess_bytes(base64.b64decode(i["b64"]), spec) for i in payload["instances"]]
        )
        start = time.perf_counter()
        with torch.inference_mode():
            probs = torch.softmax(net(torch.from_numpy(x)), dim=1).numpy()
        torch_ms = (time.perf_counter() - start) * 1000
        predictions = [
            {
                "label": spec.labels[int(row.argmax())],
                "probabilities": {
                    k: round(float(p), 6) for k, p in zip(spec.labels, row, strict=True)
                },
            }
            for row in probs
        ]
        return JSONResponse(
            {"predictions": predictions}, headers={"Server-Timing": f"torch;dur={torch_ms:.3f}"}
        )

    return app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(kind: str, root: Path, port: int) -> subprocess.Popen[bytes]:
    if kind == "flywheel":
        code = (
            "import sys; from pathlib import Path; from flywheel.core.config import load_params; "
            "from flywheel.serving.server import run_server; "
            "run_server(load_params(sys.argv[1]), Path(sys.argv[2]), '127.0.0.1', int(sys.argv[3]))"
        )
        cmd = [sys.executable, "-c", code, str(root / "params.yaml"), str(root), str(port)]
    else:
        cmd = [sys.executable, __file__, "--serve-baseline", str(root), "--port", str(port)]
    log = (root / f"{kind}.log").open("wb")
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)


def wait_ready(port: int, proc: subprocess.Popen[bytes]) -> None:
    import httpx

    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server on port {port} exited with {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server on port {port} not ready after {START_TIMEOUT_S:.0f}s")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# --- the load generator ----------------------------------------------------------------


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
    port: int, request: bytes, concurrency: int, total: int, budget_s: float
) -> dict[str, Any]:
    out: dict[str, list[float]] = {"latency": [], "runtime": [], "errors": []}
    per_client = -(-total // concurrency)
    start = time.perf_counter()
    await asyncio.gather(
        *(_client(port, request, per_client, start + budget_s, out) for _ in range(concurrency))
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
    port: int, request: bytes, concurrency: int, total: int, warmup: int, budget_s: float
) -> dict[str, Any]:
    asyncio.run(_load(port, request, concurrency, warmup, budget_s / 4))
    return asyncio.run(_load(port, request, concurrency, total, budget_s))


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
    parser.add_argument("--serve-baseline", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_baseline:
        import uvicorn

        uvicorn.run(
            baseline_app(args.serve_baseline), host="127.0.0.1", port=args.port, access_log=False
        )
        return
    results = run(args.quick)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(markdown(results))
    print(f"\nwritten {RESULTS.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
