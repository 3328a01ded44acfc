"""The Open Inference Protocol (/v2) of a real `flywheel serve`, called by real clients:
``tritonclient.http`` (binary tensors, its default, and JSON) and the OIP working group's
``open-inference-openapi`` client (JSON), for each of the four families. Every answer must
equal ``/v1/predict``'s and the in-process :class:`Predictor`'s (what ``flywheel predict``
runs), and the model metadata must round-trip.

KServe's own ``InferenceRESTClient`` cannot be installed beside the project's pins (every
kserve release pins psutil, starlette or httpx below ours); the last test runs it from a
separate interpreter named by ``FLYWHEEL_KSERVE_PYTHON`` (``make test`` makes one from
``kserve-requirements.txt``) and is skipped without one.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path

import httpx
import numpy as np
import pytest
from tests.integration.oip_served import (
    Served,
    as_columns,
    assert_same,
    pixels,
    served_fixture,  # noqa: F401 - the `served` fixture: one server per family
    v1_instances,
    v1_predictions,
    v2_tensors,
)

from flywheel.datasets.png import encode_png

pytestmark = [pytest.mark.slow]


def test_tritonclient_matches_v1_and_predict(served: Served) -> None:
    import tritonclient.http as triton

    want = as_columns(v1_predictions(served))
    direct = [p.as_dict() for p in served.predictor.predict_instances(v1_instances(served.task))]
    assert_same(as_columns(direct), want)
    client = triton.InferenceServerClient(served.url.removeprefix("http://"))
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready(served.task) and client.is_model_ready(served.task, served.version)
    assert not client.is_model_ready("nope") and not client.is_model_ready(served.task, "v9999")
    for binary in (True, False):
        inputs = []
        for name, datatype, array in v2_tensors(served.task):
            tensor = triton.InferInput(name, list(array.shape), datatype)
            tensor.set_data_from_numpy(array, binary_data=binary)
            inputs.append(tensor)
        outputs = [triton.InferRequestedOutput(n, binary_data=binary) for n in want]
        result = client.infer(
            served.task,
            inputs,
            request_id=f"r-{binary}",
            outputs=outputs,
            model_version=served.version,
        )
        assert_same({n: result.as_numpy(n) for n in want}, want)
        response = result.get_response()
        assert response["id"] == f"r-{binary}" and response["model_version"] == served.version
    # No outputs named: every output, binary (the client asks for binary_data_output).
    result = client.infer(served.task, inputs)
    assert_same({n: result.as_numpy(n) for n in want}, want)


def test_tritonclient_metadata_and_errors(served: Served) -> None:
    import tritonclient.http as triton
    from tritonclient.utils import InferenceServerException

    client = triton.InferenceServerClient(served.url.removeprefix("http://"))
    server = client.get_server_metadata()
    assert server["name"] == "flywheel" and "binary_tensor_data" in server["extensions"]
    meta = client.get_model_metadata(served.task, model_version=served.version)
    assert meta["name"] == served.task and meta["versions"] == [served.version]
    assert [(i["name"], i["datatype"]) for i in meta["inputs"]] == [
        (name, "UINT8" if dt == "UINT8" else dt) for name, dt, _ in v2_tensors(served.task)
    ]
    assert {o["name"] for o in meta["outputs"]} == set(as_columns(v1_predictions(served)))
    with pytest.raises(InferenceServerException) as err:
        client.get_model_metadata("nope")
    assert err.value.status() == "404" and "nope" in err.value.message()
    bad = triton.InferInput("wrong", [1], "BYTES")
    bad.set_data_from_numpy(np.array([b"x"], dtype=object))
    with pytest.raises(InferenceServerException) as err:
        client.infer(served.task, [bad])
    assert err.value.status() == "400" and "wrong" in err.value.message()


def test_open_inference_client_matches_v1(served: Served) -> None:
    from open_inference.openapi import InferenceRequest, RequestInput
    from open_inference.openapi.client import OpenInferenceClient

    client = OpenInferenceClient(base_url=served.url)
    client.check_server_liveness()
    client.check_server_readiness()
    client.check_model_readiness(served.task)
    meta = client.read_model_metadata(served.task)
    assert meta.name == served.task and meta.platform == "onnx_onnxv1"
    inputs = [
        RequestInput(
            name=name,
            shape=list(array.shape),
            datatype=datatype,
            data=[v.decode() for v in array.ravel()]
            if datatype == "BYTES"
            else array.ravel().tolist(),
        )
        for name, datatype, array in v2_tensors(served.task)
    ]
    response = client.model_infer(served.task, request=InferenceRequest(id="o-1", inputs=inputs))
    assert response.id == "o-1" and response.model_name == served.task
    got = {o.name: np.array(o.data.__root__).reshape(o.shape) for o in response.outputs}
    assert_same(got, as_columns(v1_predictions(served)))


def test_openapi_lists_v2_routes(served: Served) -> None:
    paths = httpx.get(f"{served.url}/openapi.json", timeout=10).json()["paths"]
    assert {"/v2/health/live", "/v2/health/ready", "/v2", "/v2/models/{name}/infer"} <= set(paths)
    assert "/v2/models/{name}/versions/{version}/infer" in paths and "/v1/predict" in paths
    # The infer route reads its path parameters itself; the schema still declares them.
    for path, names in (
        ("/v2/models/{name}/infer", ["name"]),
        ("/v2/models/{name}/versions/{version}/infer", ["name", "version"]),
    ):
        declared = paths[path]["post"]["parameters"]
        assert [p["name"] for p in declared] == names and all(p["in"] == "path" for p in declared)


KSERVE_CALL = Path(__file__).with_name("kserve_call.py")


def test_kserve_client_matches_v1(served: Served) -> None:
    python = os.environ.get("FLYWHEEL_KSERVE_PYTHON")
    if not python:
        pytest.skip(
            "set FLYWHEEL_KSERVE_PYTHON to a python with kserve (its pins conflict with ours)"
        )
    tensors = [
        (
            n,
            dt,
            [v.decode() for v in a.ravel()] if dt == "BYTES" else a.ravel().tolist(),
            list(a.shape),
        )
        for n, dt, a in v2_tensors(served.task)
    ]
    done = subprocess.run(
        [python, str(KSERVE_CALL), served.url, served.task, json.dumps(tensors)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["live"] is True and answer["ready"] is True and answer["id"] == "k-1"
    want = as_columns(v1_predictions(served))
    got = {n: np.array(v).reshape(want[n].shape) for n, v in answer["outputs"].items()}
    assert_same(got, want)


def test_tritonclient_encoded_images(served: Served) -> None:
    """PNG files as a BYTES tensor (binary: JSON strings cannot hold them) equal /v1's b64."""
    import tritonclient.http as triton

    if served.task != "image_classification":
        pytest.skip("encoded files are an image input")
    files = [encode_png(pixels(i)[0]) for i in range(3)]
    instances = [{"b64": base64.b64encode(f).decode()} for f in files]
    r = httpx.post(f"{served.url}/v1/predict", json={"instances": instances}, timeout=30)
    want = as_columns(r.json()["predictions"])
    tensor = triton.InferInput("image", [len(files)], "BYTES")
    tensor.set_data_from_numpy(np.array(files, dtype=object))
    client = triton.InferenceServerClient(served.url.removeprefix("http://"))
    result = client.infer(served.task, [tensor])
    assert_same({n: result.as_numpy(n) for n in want}, want)
    # The pixels the files hold, sent as pixels, give the same answer.
    assert_same(as_columns(v1_predictions(served)), want)
