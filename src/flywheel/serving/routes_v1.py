"""The TF-Serving-style routes (``/v1``): predictions, feedback and the served card."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from flywheel.core.errors import InputError
from flywheel.serving.requests import (
    RequestRejectedError,
    decode_instances,
    instances_of,
    object_with,
    prediction_body,
)
from flywheel.serving.state import ServerState

PATHS = ("/v1/predict", "/v1/feedback", "/v1/model")


def router(state: ServerState) -> APIRouter:
    routes = APIRouter()

    @routes.post("/v1/predict")
    async def predict(request: Request) -> JSONResponse:
        state.refuse_when_overloaded()
        async with state.batcher.admission():
            model = state.serving_model()
            payload, large = await state.read_json(request)
            instances = instances_of(payload, state.serve.max_instances)
            future = await state.submit(model, instances, large)
        body, headers = prediction_body(await state.result(model, future))
        return JSONResponse(body, headers=headers)

    @routes.post("/v1/feedback", status_code=201)
    async def post_feedback(request: Request) -> JSONResponse:
        model = state.serving_model()
        payload = object_with((await state.read_json(request))[0], "instance")
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
            return state.feedback.save(label, stored, {"model_version": model.version})

        record_id = await run_in_threadpool(store)
        return JSONResponse({"id": record_id}, status_code=201)

    @routes.get("/v1/feedback/{record_id}")
    async def get_feedback(record_id: str) -> JSONResponse:
        record = await run_in_threadpool(state.feedback.load, record_id)
        if record is None:
            raise RequestRejectedError(404, "not_found", f"no feedback record {record_id!r}")
        return JSONResponse(record)

    @routes.get("/v1/model")
    async def model_card() -> JSONResponse:
        return JSONResponse(state.serving_model().card.model_dump(mode="json"))

    return routes
