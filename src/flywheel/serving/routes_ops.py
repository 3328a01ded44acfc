"""What orchestrators and monitoring read: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import Any

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
        model = state.holder.current
        if model is None:
            reason = state.holder.last_refusal or "no production model is loaded yet"
            return JSONResponse({"ready": False, "reason": reason}, status_code=503)
        body: dict[str, Any] = {"ready": True, "model_version": model.version}
        if state.holder.last_refusal:
            body["last_refusal"] = state.holder.last_refusal
        return JSONResponse(body)

    @routes.get("/metrics")
    async def prometheus() -> Response:
        data, content_type = state.metrics.render()
        return Response(data, media_type=content_type)

    return routes
