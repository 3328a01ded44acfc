"""Where one request's time goes: a Flywheel server (default model) under cProfile answers a
stretch of c=1 ``/v1/predict`` and ``/v2`` requests (after a warm-up; the profiler runs only
between the benchmark server's ``/profile/start`` and ``/profile/stop``). Its event-loop
thread's time is summed per area (HTTP server, framework, Flywheel, JSON, event loop,
waiting) and per function, divided by the requests answered. cProfile sees only the
thread it runs in (the event loop); the decode pool's and ONNX Runtime's threads are
accounted by the client's ``Server-Timing`` figures, recorded beside it.
"""

from __future__ import annotations

import pstats
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from benchmarks.serving_load import measure
from benchmarks.serving_servers import free_port, stop_server, wait_ready

REQUESTS = 600
# Path fragments -> area; the first match wins, the rest is "other".
AREAS = (
    ("uvicorn", "HTTP server (uvicorn, h11)"),
    ("h11", "HTTP server (uvicorn, h11)"),
    ("httptools", "HTTP server (uvicorn, h11)"),
    ("starlette", "framework (Starlette, FastAPI)"),
    ("fastapi", "framework (Starlette, FastAPI)"),
    ("pydantic", "framework (Starlette, FastAPI)"),
    ("flywheel", "flywheel (routes, batcher, middleware)"),
    ("prometheus_client", "metrics (prometheus_client)"),
    ("json", "JSON"),
    ("asyncio", "event loop (asyncio)"),
    ("concurrent", "thread hand-off (concurrent.futures)"),
    ("threading", "thread hand-off (concurrent.futures)"),
)


def area(filename: str, function: str) -> str:
    if filename == "~":  # a builtin: named by what it does
        if "epoll" in function:
            return "waiting for the socket (epoll)"
        if "socket" in function:
            return "socket send/recv"
        return "builtins (C calls, numpy)"
    for fragment, name in AREAS:
        if fragment in filename:
            return name
    return "other"


def summarise(path: Path, requests: int) -> dict[str, Any]:
    stats = pstats.Stats(str(path))
    areas: dict[str, float] = {}
    functions = []
    for (filename, line, name), (_, _, tottime, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        where = area(filename, name)
        areas[where] = areas.get(where, 0.0) + tottime
        functions.append((tottime, f"{Path(filename).name}:{line} {name}"))
    per = 1e6 / max(requests, 1)
    top = sorted(functions, reverse=True)[:15]
    busy = sum(t for a, t in areas.items() if not a.startswith("waiting"))
    return {
        "requests": requests,
        "event_loop_busy_us_per_request": round(busy * per, 1),
        "areas_us_per_request": {
            a: round(t * per, 1) for a, t in sorted(areas.items(), key=lambda kv: -kv[1])
        },
        "top_functions_us_per_request": [{"function": f, "us": round(t * per, 1)} for t, f in top],
    }


def profile_one_request(
    start: Callable[..., subprocess.Popen[bytes]],
    build: Callable[[Path], Any],
    requests_for: Callable[[str], dict[str, bytes]],
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for route in ("flywheel v1", "flywheel v2"):
        with tempfile.TemporaryDirectory(prefix="flywheel-profile-") as tmp:
            root = Path(tmp)
            build(root)
            port, prof = free_port(), root / "server.prof"
            proc = start(root, port, profile=prof)
            try:
                wait_ready(port, proc)
                request = requests_for("default")[route]
                measure(port, request, 1, 100, 0, 30.0)  # warm-up, not profiled
                httpx.get(f"http://127.0.0.1:{port}/profile/start", timeout=10)
                timing = measure(port, request, 1, REQUESTS, 0, 60.0)
                httpx.get(f"http://127.0.0.1:{port}/profile/stop", timeout=30)
            finally:
                stop_server(proc)
            if not prof.is_file():
                out[route] = {"error": "the profiled server wrote no profile"}
                continue
            # Every request the server answered: warm-up, timed ones, and readiness probes.
            out[route] = {
                "client": timing,
                **summarise(prof, timing["requests"] + timing["errors"]),
            }
    return out


def add_profile_routes(app: Any, path: Path) -> None:
    """``/profile/start`` and ``/profile/stop``: cProfile on the event-loop thread between
    them only, so imports and start-up stay out of the per-request figures."""
    import cProfile

    from fastapi.responses import JSONResponse

    profiler = cProfile.Profile()

    async def start(_: Any) -> JSONResponse:
        profiler.enable()
        return JSONResponse({"profiling": True})

    async def stop(_: Any) -> JSONResponse:
        profiler.disable()
        profiler.dump_stats(str(path))
        return JSONResponse({"profiling": False})

    app.add_route("/profile/start", start, methods=["GET"])
    app.add_route("/profile/stop", stop, methods=["GET"])
