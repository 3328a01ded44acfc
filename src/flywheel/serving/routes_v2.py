"""The Open Inference Protocol routes (``/v2``: KServe v2, Triton REST), for clients such
as ``tritonclient.http`` and KServe's ``InferenceRESTClient``.

The served model is named ``serve.model_name`` (default: its task, e.g.
``image_classification``) and its version is the registry version in production
(``v0003``); a request naming another name or version is answered 404. Inference takes the
same path as ``/v1/predict``: the overload checks, the decode pool (the body is parsed and
decoded there, never on the event loop), the family's decoder and limits, the
micro-batcher, and bearer auth (the two health probes stay public, like ``/healthz``).
Errors are ``{"error", "kind"}`` (every v2 client reads ``error``), 4xx for bad input.
Tensor shapes per family: :mod:`.oip_models`; wire format: :mod:`.oip_codec`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from flywheel import __version__
from flywheel.serving import oip_codec, oip_models
from flywheel.serving.model_holder import LoadedModel
from flywheel.serving.prediction_logging import answered_body
from flywheel.serving.requests import RequestRejectedError, decode_instances
from flywheel.serving.state import ServerState

MODEL = "/v2/models/{name}"
VERSIONED = "/v2/models/{name}/versions/{version}"
PATHS = ("/v2", "/v2/health/live", "/v2/health/ready")
PUBLIC = ("/v2/health/live", "/v2/health/ready")
EXTENSIONS = ["binary_tensor_data"]


def _path_parameter(name: str, what: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "description": what,
    }


_NAME = _path_parameter("name", "the served model's name (GET /v2/models/{name} describes it)")
_VERSION = _path_parameter("version", "the registry version in production, e.g. v0003")
_INFER_DOC: dict[str, Any] = {
    "parameters": [_NAME],
    "requestBody": {
        "description": (
            "An OIP inference request: {id?, parameters?, inputs: [{name, datatype, shape, "
            "data}], outputs?: [{name, parameters?}]}; or, with the Inference-Header-"
            "Content-Length header, that JSON followed by binary tensor data."
        ),
        "content": {
            "application/json": {"schema": {"type": "object", "required": ["inputs"]}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    },
}
_VERSIONED_DOC: dict[str, Any] = {**_INFER_DOC, "parameters": [_NAME, _VERSION]}


def model_name(state: ServerState, model: LoadedModel) -> str:
    return state.serve.model_name or model.card.task


def _served(state: ServerState, name: str, version: str | None) -> LoadedModel:
    model = state.serving_model()
    expected = model_name(state, model)
    if name != expected:
        raise RequestRejectedError(
            404, "unknown_model", f"unknown model {name[:60]!r}; this server serves {expected!r}"
        )
    if version is not None and version != model.version:
        raise RequestRejectedError(
            404,
            "unknown_version",
            f"model {name!r} has no version {version[:40]!r} being served; "
            f"version {model.version} is",
        )
    return model


def decode_request(
    state: ServerState, model: LoadedModel, body: bytes, header_length: str | None
) -> tuple[oip_codec.InferRequest, np.ndarray, list[Any]]:
    """A v2 body to the parsed request, the model's rows and the ``/v1`` instances they
    stand for (what the prediction log keeps). Blocking: run on the pool."""
    request = oip_codec.parse_request(body, header_length)
    instances = oip_models.instances(request.inputs, model)
    limit = state.serve.max_instances
    if len(instances) > limit:
        raise RequestRejectedError(
            413,
            "too_many_instances",
            f"{len(instances)} instances is more than the limit of {limit}",
        )
    if not instances:
        raise RequestRejectedError(
            400, "invalid_request", "the inputs hold no instances; send at least one"
        )
    known = [o["name"] for o in oip_models.output_metadata(model)]
    unknown = [w for w in request.outputs or () if w not in known]
    if unknown:
        raise RequestRejectedError(
            400, "invalid_request", f"unknown outputs {unknown[:5]}; this model has {known}"
        )
    return request, decode_instances(model.decoder, instances, state.limits(model)), instances


def _selected(outputs: list[oip_codec.Tensor], wanted: list[str] | None) -> list[oip_codec.Tensor]:
    if wanted is None:
        return outputs
    by_name = {t.name: t for t in outputs}
    return [by_name[w] for w in wanted]  # names checked by decode_request


def _metadata(state: ServerState, model: LoadedModel) -> dict[str, Any]:
    return {
        "name": model_name(state, model),
        "versions": [model.version],
        "platform": "onnx_onnxv1",
        "inputs": oip_models.input_metadata(model),
        "outputs": oip_models.output_metadata(model),
    }


def _health_routes(routes: APIRouter, state: ServerState) -> None:
    @routes.get("/v2/health/live", summary="OIP server live")
    async def live() -> JSONResponse:
        return JSONResponse({"live": True})

    @routes.get("/v2/health/ready", summary="OIP server ready")
    async def ready() -> JSONResponse:
        if state.holder.current is None:
            return JSONResponse(
                {"ready": False, "error": "no production model is being served yet"},
                status_code=503,
            )
        return JSONResponse({"ready": True})

    @routes.get("/v2", summary="OIP server metadata")
    async def server_metadata() -> JSONResponse:
        return JSONResponse({"name": "flywheel", "version": __version__, "extensions": EXTENSIONS})


def _infer_route(routes: APIRouter, state: ServerState) -> None:
    # The path parameters are read from the request, not declared in the signature: FastAPI's
    # parameter handling cost more per call than the rest of the route (see the profile in
    # benchmarks/REPORT.md); the schema names them through openapi_extra instead.
    @routes.post(MODEL + "/infer", summary="OIP inference", openapi_extra=_INFER_DOC)
    @routes.post(
        VERSIONED + "/infer", summary="OIP inference on a version", openapi_extra=_VERSIONED_DOC
    )
    async def infer(request: Request) -> Response:
        path = request.path_params
        name, version = path["name"], path.get("version")
        state.refuse_when_overloaded()
        async with state.batcher.admission():
            model = _served(state, name, version)
            body = await request.body()
            header_length = request.headers.get(oip_codec.HEADER_LENGTH)
            with state.decoding.slot():
                parsed, rows, instances = await state.decoding.run(
                    decode_request, state, model, body, header_length
                )
            future = state.batcher.enqueue(model, rows)
        result = await state.result(model, future)
        body_v1, headers = await answered_body(state, model, result, instances)
        answers = body_v1["predictions"]
        outputs = _selected(oip_models.output_tensors(model, result.predictions), parsed.outputs)
        head: dict[str, Any] = {
            "model_name": name,
            "model_version": result.version,
            # Where a client finds what to name in POST /v1/feedback (unknown response
            # parameters are ignored by OIP clients).
            "parameters": {"prediction_ids": [a["prediction_id"] for a in answers]},
        }
        if parsed.id is not None:
            head["id"] = parsed.id
        content, wire = oip_codec.encode_response(head, outputs, parsed)
        return Response(content, headers={**headers, **wire})


def router(state: ServerState) -> APIRouter:
    routes = APIRouter(tags=["Open Inference Protocol (v2)"])
    _infer_route(routes, state)  # first: the route matched most often
    _health_routes(routes, state)

    @routes.get(MODEL, summary="OIP model metadata")
    @routes.get(VERSIONED, summary="OIP model version metadata")
    async def model_metadata(name: str, version: str | None = None) -> JSONResponse:
        return JSONResponse(_metadata(state, _served(state, name, version)))

    @routes.get(MODEL + "/ready", summary="OIP model ready")
    @routes.get(VERSIONED + "/ready", summary="OIP model version ready")
    async def model_ready(name: str, version: str | None = None) -> JSONResponse:
        _served(state, name, version)
        return JSONResponse({"name": name, "ready": True})

    return routes
