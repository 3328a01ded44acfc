"""What orchestrators and monitoring read: liveness, readiness and Prometheus metrics.

The probes answer without credentials, so they say up/ready and nothing more: which
version is served, and why a load was refused, are in ``/v1/model``, ``/metrics`` and the
log, behind the token when there is one.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from flywheel.serving.state import ServerState

PATHS = ("/healthz", "/readyz", "/metrics")


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
        data, content_type = state.metrics.render()
        return Response(data, media_type=content_type)

    return routes
