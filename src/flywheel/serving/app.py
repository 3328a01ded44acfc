"""The production model server: routes, error shape and the wiring of the serving parts.

Routes (TF Serving / KServe v1 style)::

    POST /v1/predict         {"instances": [...]} -> {"predictions": [...], "model_version": ...}
    POST /v1/feedback        {"instance": ..., "label": ...} -> {"id": ...}
    GET  /v1/feedback/{id}   the stored record's sidecar
    GET  /v1/model           the card of the model being served
    GET  /healthz /readyz /metrics

Every refusal is ``{"error": <message>, "kind": <short name>}`` with a 4xx status. Models
only ever come from the registry's production alias; no request can name a path.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from flywheel.config import Params
from flywheel.data.images import InputError
from flywheel.layout import Layout
from flywheel.registry import Registry
from flywheel.serving.auth import BearerAuthMiddleware
from flywheel.serving.batcher import BatchResult, MicroBatcher
from flywheel.serving.decoders import FamilyDecoder
from flywheel.serving.feedback import FeedbackStore
from flywheel.serving.limits import BodyLimitMiddleware
from flywheel.serving.metrics import MetricsMiddleware, ServingMetrics
from flywheel.serving.model_holder import LoadedModel, ModelHolder

# Bodies above this are parsed and decoded on a worker thread; smaller ones are cheaper
# to handle inline than to hand over.
_INLINE_BYTES = 64 * 1024
KNOWN_PATHS = ("/v1/predict", "/v1/feedback", "/v1/model", "/healthz", "/readyz", "/metrics")


class RequestRejectedError(Exception):
    """A request the server will not serve; becomes ``{"error", "kind"}`` with ``status``."""

    def __init__(
        self, status: int, kind: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.message = message
        self.headers = headers


def _reject_constant(name: str) -> Any:
    raise RequestRejectedError(
        400, "invalid_json", f"{name} is not valid JSON; send finite numbers only"
    )


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise RequestRejectedError(400, "invalid_json", f"number {text[:32]} is out of range")
    return value


def parse_json(body: bytes) -> Any:
    if not body.strip():
        raise RequestRejectedError(
            400, "invalid_json", "request body is empty; expected a JSON object"
        )
    try:
        return json.loads(body, parse_constant=_reject_constant, parse_float=_finite_float)
    except RecursionError:
        raise RequestRejectedError(400, "invalid_json", "JSON is nested too deeply") from None
    except ValueError as err:  # JSONDecodeError, bad UTF-8, over-long integers
        raise RequestRejectedError(
            400, "invalid_json", f"request body is not valid JSON: {err}"
        ) from None


def _object(payload: Any, required: str) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise RequestRejectedError(
            400,
            "invalid_request",
            f'body must be a JSON object with "{required}", got {type(payload).__name__}',
        )
    if required not in payload:
        raise RequestRejectedError(400, "invalid_request", f'body is missing "{required}"')
    return payload


def instances_of(payload: Any, max_instances: int) -> list[Any]:
    instances = _object(payload, "instances")["instances"]
    if not isinstance(instances, list):
        raise RequestRejectedError(
            400, "invalid_request", f'"instances" must be a list, got {type(instances).__name__}'
        )
    if not instances:
        raise RequestRejectedError(
            400, "invalid_request", '"instances" is empty; send at least one'
        )
    if len(instances) > max_instances:
        raise RequestRejectedError(
            413,
            "too_many_instances",
            f"{len(instances)} instances is more than the limit of {max_instances}",
        )
    return instances


def decode_instances(decoder: FamilyDecoder, instances: list[Any]) -> np.ndarray:
    try:
        return decoder.decode(instances)
    except InputError as err:
        raise RequestRejectedError(400, "invalid_instance", str(err)) from None


def _prediction_body(result: BatchResult) -> tuple[dict[str, Any], dict[str, str]]:
    body = {
        "predictions": [p.as_dict() for p in result.predictions],
        "model_version": result.version,
    }
    headers = {
        "X-Model-Version": result.version,
        "Server-Timing": (
            f"queue;dur={result.queue_seconds * 1000:.3f}, "
            f"ort;dur={result.ort_seconds * 1000:.3f}, "
            f'batch;desc="{result.batch_size}"'
        ),
    }
    return body, headers


def create_app(params: Params, layout: Layout, *, api_token: str | None = None) -> FastAPI:
    """The server for ``layout.registry``'s production model. ``api_token`` turns on bearer
    auth for every route but the probes; binding rules live in :mod:`flywheel.serving.server`."""
    serve = params.serve
    inbox = params.data.feedback_inbox
    inbox = inbox if inbox.is_absolute() else layout.root / inbox
    metrics = ServingMetrics()
    holder = ModelHolder(Registry(layout.registry), metrics)
    batcher = MicroBatcher(serve.max_batch, serve.max_wait_ms, metrics)
    feedback = FeedbackStore(inbox, data_dir=layout.data)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await holder.check_async()
        batcher.start()
        poller = asyncio.get_running_loop().create_task(holder.poll_forever(serve.poll_interval_s))
        try:
            yield
        finally:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
            await batcher.close()

    app = FastAPI(
        title="flywheel model server",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.holder = holder
    app.state.batcher = batcher
    app.state.metrics = metrics
    app.state.feedback = feedback

    def serving_model() -> LoadedModel:
        model = holder.current
        if model is None:
            raise RequestRejectedError(
                503, "not_ready", holder.last_refusal or "no production model is loaded yet"
            )
        return model

    async def read_json(request: Request) -> tuple[Any, bool]:
        body = await request.body()
        large = len(body) > _INLINE_BYTES
        return (await run_in_threadpool(parse_json, body) if large else parse_json(body)), large

    @app.exception_handler(RequestRejectedError)
    async def rejected(_: Request, err: RequestRejectedError) -> JSONResponse:
        metrics.errors.labels(kind=err.kind).inc()
        return JSONResponse(
            {"error": err.message, "kind": err.kind}, status_code=err.status, headers=err.headers
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, err: StarletteHTTPException) -> JSONResponse:
        kind = "not_found" if err.status_code == 404 else f"http_{err.status_code}"
        metrics.errors.labels(kind=kind).inc()
        return JSONResponse({"error": str(err.detail), "kind": kind}, status_code=err.status_code)

    @app.exception_handler(Exception)
    async def internal_error(_: Request, err: Exception) -> JSONResponse:
        metrics.errors.labels(kind="internal").inc()
        return JSONResponse({"error": "internal server error", "kind": "internal"}, status_code=500)

    @app.post("/v1/predict")
    async def predict(request: Request) -> JSONResponse:
        backlog = batcher.backlog_rows
        if backlog >= serve.max_queued_rows:
            # Refused before the body is read or decoded: an overloaded server spends
            # nothing more on work it cannot start soon.
            raise RequestRejectedError(
                503,
                "overloaded",
                f"server busy: {backlog} rows already wait for the model "
                f"(serve.max_queued_rows {serve.max_queued_rows}); retry shortly",
                headers={"Retry-After": "1"},
            )
        async with batcher.admission():
            model = serving_model()
            payload, large = await read_json(request)
            instances = instances_of(payload, serve.max_instances)
            if large:
                rows = await run_in_threadpool(decode_instances, model.decoder, instances)
            else:
                rows = decode_instances(model.decoder, instances)
            future = batcher.enqueue(model, rows)
        try:
            result = await future
        except Exception as err:
            raise RequestRejectedError(
                500, "inference", f"inference failed on {model.version}: {err}"
            ) from err
        body, headers = _prediction_body(result)
        return JSONResponse(body, headers=headers)

    @app.post("/v1/feedback", status_code=201)
    async def post_feedback(request: Request) -> JSONResponse:
        model = serving_model()
        payload = _object((await read_json(request))[0], "instance")
        if model.predictor.family.objective != "classification":
            raise RequestRejectedError(
                400, "unsupported", f"feedback takes class labels; {model.card.task} has none"
            )
        label = payload.get("label")
        if not isinstance(label, str) or label not in model.card.labels:
            raise RequestRejectedError(
                400,
                "unknown_label",
                f"label must be one of {list(model.card.labels)}, got {label!r}",
            )
        instance = payload["instance"]

        def store() -> str:
            # Only what the model could have answered is kept.
            decode_instances(model.decoder, [instance])
            try:
                stored = model.decoder.to_stored(instance)
            except InputError as err:
                raise RequestRejectedError(400, "invalid_instance", str(err)) from None
            return feedback.save(label, stored, {"model_version": model.version})

        record_id = await run_in_threadpool(store)
        return JSONResponse({"id": record_id}, status_code=201)

    @app.get("/v1/feedback/{record_id}")
    async def get_feedback(record_id: str) -> JSONResponse:
        record = await run_in_threadpool(feedback.load, record_id)
        if record is None:
            raise RequestRejectedError(404, "not_found", f"no feedback record {record_id!r}")
        return JSONResponse(record)

    @app.get("/v1/model")
    async def model_card() -> JSONResponse:
        return JSONResponse(serving_model().card.model_dump(mode="json"))

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        model = holder.current
        if model is None:
            reason = holder.last_refusal or "no production model is loaded yet"
            return JSONResponse({"ready": False, "reason": reason}, status_code=503)
        body: dict[str, Any] = {"ready": True, "model_version": model.version}
        if holder.last_refusal:
            body["last_refusal"] = holder.last_refusal
        return JSONResponse(body)

    @app.get("/metrics")
    async def prometheus() -> Response:
        data, content_type = metrics.render()
        return Response(data, media_type=content_type)

    # Added innermost first: metrics see every answer, auth runs before any body is read.
    app.add_middleware(BodyLimitMiddleware, max_bytes=serve.max_body_bytes, metrics=metrics)
    if api_token:
        app.add_middleware(BearerAuthMiddleware, token=api_token, metrics=metrics)
    app.add_middleware(MetricsMiddleware, metrics=metrics, known_paths=KNOWN_PATHS)
    return app


def create_app_for_root(params: Params, root: Path, *, api_token: str | None = None) -> FastAPI:
    return create_app(params, Layout.from_params(params, root), api_token=api_token)
