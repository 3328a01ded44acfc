"""What orchestrators and monitoring read: liveness, readiness and Prometheus metrics.

The probes answer without credentials, so they say up/ready and nothing more: which
version is served, and why a load was refused, are in ``/v1/model``, ``/metrics`` and the
log, behind the token when there is one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from flywheel.serving.state import ServerState

PATHS = ("/healthz", "/readyz", "/metrics")


def _read_report(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # none yet, or being replaced: the gauges keep their last values
    return report if isinstance(report, dict) else None


def router(state: ServerState) -> APIRouter:
    routes = APIRouter()

    @routes.get("/healthz")
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @routes.get("/readyz")
    async def readyz() -> JSONResponse:
        ready = state.holder.current is not None
        body: dict[str, object] = {"ready": ready}
        if state.follower is not None:
            # A replica that lost the remote still serves what it has: ready, and says so.
            body["remote"] = state.follower.status
        return JSONResponse(body, status_code=200 if ready else 503)

    @routes.get("/metrics")
    async def prometheus() -> Response:
        report = await run_in_threadpool(_read_report, state.monitor_report)
        if report is not None:
            state.metrics.monitor_report(report)
        data, content_type = state.metrics.render()
        return Response(data, media_type=content_type)

    return routes
