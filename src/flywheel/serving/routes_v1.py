"""The TF-Serving-style routes (``/v1``): predictions, feedback and the served card.

Every body is read on the event loop (it is I/O), then parsed, checked and decoded on the
decode pool (:mod:`.decoding`), inside one of its bounded slots.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from flywheel.serving.feedback_intake import store_feedback
from flywheel.serving.feedback_quota import sender_id
from flywheel.serving.prediction_logging import answered_body
from flywheel.serving.requests import RequestRejectedError
from flywheel.serving.state import ServerState

PATHS = ("/v1/predict", "/v1/feedback", "/v1/model")


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _sender(state: ServerState, request: Request) -> str:
    token = None
    if state.authenticated:  # the auth middleware has checked it already
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
    return sender_id(request.client.host if request.client else None, token)


def router(state: ServerState) -> APIRouter:
    routes = APIRouter()

    @routes.post("/v1/predict")
    async def predict(request: Request) -> JSONResponse:
        state.refuse_when_overloaded()
        async with state.batcher.admission():
            model = state.serving_model()
            body = await request.body()
            with state.decoding.slot():
                rows, instances = await state.decoding.run(state.decode_body_keeping, model, body)
            future = state.batcher.enqueue(model, rows)
        result = await state.result(model, future)
        body_out, headers = await answered_body(state, model, result, instances)
        return JSONResponse(body_out, headers=headers)

    @routes.post("/v1/feedback", status_code=201)
    async def post_feedback(request: Request) -> JSONResponse:
        state.decoding.refuse_when_full()
        model = state.serving_model()
        body = await request.body()
        sender = _sender(state, request)
        with state.decoding.slot():
            record_id = await state.decoding.run(store_feedback, state, model, body, sender)
        return JSONResponse({"id": record_id}, status_code=201)

    @routes.get("/v1/feedback/{record_id}")
    async def get_feedback(record_id: str) -> JSONResponse:
        record = await run_in_threadpool(state.feedback.load, record_id)
        if record is None:
            raise RequestRejectedError(404, "not_found", f"no feedback record {_show(record_id)}")
        return JSONResponse(record)

    @routes.get("/v1/model")
    async def model_card() -> JSONResponse:
        return JSONResponse(state.serving_model().card.model_dump(mode="json"))

    return routes
