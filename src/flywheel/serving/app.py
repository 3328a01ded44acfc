"""The production model server: the wiring of the serving parts and the error shape.

Routes (TF Serving / KServe v1 style, :mod:`.routes_v1`; probes and metrics,
:mod:`.routes_ops`)::

    POST /v1/predict         {"instances": [...]} -> {"predictions": [...], "model_version": ...}
    POST /v1/feedback        {"prediction_id" | "instance": ..., "label": ...} -> {"id": ...}
    GET  /v1/feedback/{id}   the stored record's sidecar
    GET  /v1/model           the card of the model being served
    GET  /healthz /readyz /metrics
    /v2/...                  the Open Inference Protocol (KServe v2 / Triton), :mod:`.routes_v2`
    GET  /openapi.json       the routes' OpenAPI schema
    GET  /data-docs/...      the Great Expectations Data Docs (read-only, :mod:`.routes_docs`)

Every refusal is ``{"error": <message>, "kind": <short name>}`` with a 4xx status (503
when busy or not ready); a message never holds a file path or a library's own text, which
go to the log. Models only ever come from the registry's production alias; no request can
name a path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from flywheel.core.config import Params
from flywheel.core.layout import Layout
from flywheel.monitor.prediction_log import PredictionLog
from flywheel.release.registry import Registry
from flywheel.serving import routes_docs, routes_ops, routes_v1, routes_v2
from flywheel.serving.auth import BearerAuthMiddleware
from flywheel.serving.batcher import MicroBatcher
from flywheel.serving.decoding import DecodePool
from flywheel.serving.feedback import FeedbackStore
from flywheel.serving.feedback_quota import FeedbackQuota
from flywheel.serving.limits import BodyLimitMiddleware
from flywheel.serving.model_holder import ModelHolder
from flywheel.serving.requests import RequestRejectedError
from flywheel.serving.state import ServerState
from flywheel.serving.telemetry import MetricsMiddleware, ServingMetrics

if TYPE_CHECKING:
    from flywheel.serving.follower import RemoteFollower

KNOWN_PATHS = (*routes_v1.PATHS, *routes_ops.PATHS, *routes_v2.PATHS)
log = logging.getLogger("flywheel.serving")


def _state(params: Params, layout: Layout, authenticated: bool) -> ServerState:
    inbox = params.data.feedback_inbox
    inbox = inbox if inbox.is_absolute() else layout.root / inbox
    metrics = ServingMetrics()
    serve = params.serve
    predictions = PredictionLog(layout.prediction_log, params.monitor)
    return ServerState(
        serve=serve,
        holder=ModelHolder(Registry(layout.registry), metrics),
        batcher=MicroBatcher(serve.max_batch, serve.max_wait_ms, metrics),
        metrics=metrics,
        feedback=_feedback(params, inbox, layout),
        decoding=DecodePool(serve.decode_threads, serve.max_decoding),
        quota=FeedbackQuota(inbox, serve),
        authenticated=authenticated,
        predictions=predictions,
        monitor_report=layout.monitor_report,
        follower=_follower(params, layout, metrics),
        **_shared_log(params, layout, predictions, metrics),
    )


def _feedback(params: Params, inbox: Path, layout: Layout) -> FeedbackStore:
    if not params.remote.enabled:
        return FeedbackStore(inbox, data_dir=layout.data)
    from flywheel.serving.remote_feedback import RemoteFeedbackStore

    return RemoteFeedbackStore(inbox, params.remote, data_dir=layout.data)


def _follower(params: Params, layout: Layout, metrics: ServingMetrics) -> RemoteFollower | None:
    if not params.remote.enabled:
        return None
    from flywheel.serving.follower import RemoteFollower

    return RemoteFollower(layout.registry, params.remote, metrics)


def _shared_log(
    params: Params, layout: Layout, predictions: PredictionLog, metrics: ServingMetrics
) -> dict[str, Any]:
    if not params.remote.enabled:
        return {}
    from flywheel.monitor.shared_log import SharedPredictionLog
    from flywheel.remote.objects import ObjectStore
    from flywheel.serving.log_shipping import ShippingTask

    # Feedback names recent predictions: a lookup reads what two local segments would hold.
    shared = SharedPredictionLog(
        ObjectStore(params.remote),
        layout.shared_prediction_log,
        max_bytes=2 * params.monitor.log_segment_bytes,
    )
    return {
        "shipping": ShippingTask(predictions, params.remote, metrics),
        "shared_predictions": shared,
    }


def _error_handlers(app: FastAPI, state: ServerState) -> None:
    errors = state.metrics.errors

    @app.exception_handler(RequestRejectedError)
    async def rejected(_: Request, err: RequestRejectedError) -> JSONResponse:
        errors.labels(kind=err.kind).inc()
        return JSONResponse(
            {"error": err.message, "kind": err.kind}, status_code=err.status, headers=err.headers
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, err: StarletteHTTPException) -> JSONResponse:
        kind = "not_found" if err.status_code == 404 else f"http_{err.status_code}"
        errors.labels(kind=kind).inc()
        return JSONResponse({"error": str(err.detail), "kind": kind}, status_code=err.status_code)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, err: Exception) -> JSONResponse:
        errors.labels(kind="internal").inc()
        # The traceback names files and internals: it goes to the log, never to a client.
        log.error("internal error on %s", request.url.path, exc_info=err)
        return JSONResponse({"error": "internal server error", "kind": "internal"}, status_code=500)


def create_app(params: Params, layout: Layout, *, api_token: str | None = None) -> FastAPI:
    """The server for ``layout.registry``'s production model. ``api_token`` turns on bearer
    auth for every route but the probes; binding rules live in :mod:`flywheel.serving.server`."""
    state = _state(params, layout, authenticated=bool(api_token))

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        follower = state.follower
        if follower is not None:
            await follower.check_async()
        await state.holder.check_async()
        state.batcher.start()
        state.decoding.start()
        poll = state.holder.poll_forever(params.serve.poll_interval_s)
        loop = asyncio.get_running_loop()
        pollers = [loop.create_task(poll)]
        if follower is not None:
            pollers.append(loop.create_task(follower.follow_forever(state.holder.check_async)))
        if state.shipping is not None:
            pollers.append(loop.create_task(state.shipping.ship_forever()))
        try:
            yield
        finally:
            for poller in pollers:
                poller.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await poller
            await state.batcher.close()
            state.decoding.close()
            if state.shipping is not None:
                await anyio.to_thread.run_sync(state.shipping.ship)  # the last lines

    app = FastAPI(
        title="flywheel model server",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        # The schema lists the routes (v1, v2, probes); behind the token when there is one.
        openapi_url="/openapi.json",
    )
    app.state.holder = state.holder
    app.state.batcher = state.batcher
    app.state.metrics = state.metrics
    app.state.feedback = state.feedback
    _error_handlers(app, state)
    # Routes are matched in order of inclusion and each request pays for those before its
    # own: /v1/predict leads v1's, v2's infer route leads its router, the rest come after.
    app.include_router(routes_v1.router(state))
    app.include_router(routes_v2.router(state))
    app.include_router(routes_ops.router(state))
    app.include_router(routes_docs.router(layout))
    # Added innermost first: metrics see every answer, auth runs before any body is read.
    app.add_middleware(
        BodyLimitMiddleware, max_bytes=params.serve.max_body_bytes, metrics=state.metrics
    )
    if api_token:
        app.add_middleware(BearerAuthMiddleware, token=api_token, metrics=state.metrics)
    app.add_middleware(MetricsMiddleware, metrics=state.metrics, known_paths=KNOWN_PATHS)
    return app


def create_app_for_root(params: Params, root: Path, *, api_token: str | None = None) -> FastAPI:
    return create_app(params, Layout.from_params(params, root), api_token=api_token)
