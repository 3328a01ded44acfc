"""The model server over real HTTP: uvicorn on a free loopback port, a temp registry, small
random-weight ConvNets (8x8 grey, labels "0".."9") exported with the project's exporter.
Here: what is served, and how it changes: predictions, hot swap, refused loads, readiness."""

from __future__ import annotations

import base64
import hashlib
import json
import math
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from tests.integration.serving_helpers import (
    card_fields,
    make_params,
    metric_value,
    png_b64,
    random_images,
    serving,
    wait_for,
)

from flywheel.core.layout import Layout
from flywheel.datasets.png import encode_png
from flywheel.release.predictor import Predictor
from flywheel.release.registry import Registry

# --- predictions -----------------------------------------------------------------------


def without_ids(answer: httpx.Response) -> list[dict[str, Any]]:
    predictions = answer.json()["predictions"]
    return [{k: v for k, v in p.items() if k != "prediction_id"} for p in predictions]


@pytest.mark.slow
def test_predictions_over_http_equal_predict_files(workspace: Any, tmp_path: Path) -> None:
    params, layout, registry = workspace
    images = random_images(12)
    paths = []
    for i, pixels in enumerate(images):
        paths.append(tmp_path / f"img{i}.png")
        paths[-1].write_bytes(encode_png(pixels))
    big = []
    for i, pixels in enumerate(np.random.default_rng(1).integers(0, 256, (8, 120, 120), np.uint8)):
        big.append(tmp_path / f"big{i}.png")
        big[-1].write_bytes(encode_png(pixels))
    predictor = Predictor.from_registry(registry)
    expected = [p.as_dict() for p in predictor.predict_files(paths)]
    expected_large = [p.as_dict() for p in predictor.predict_files(big)]

    with serving(params, layout) as (_, client):
        as_png = client.post("/v1/predict", json={"instances": [png_b64(x) for x in images]})
        as_array = client.post("/v1/predict", json={"instances": [x.tolist() for x in images]})
        as_chw = client.post("/v1/predict", json={"instances": [[x.tolist()] for x in images[:2]]})
        # Big images are resized by the same preprocessing; the body is parsed off the loop.
        large = {"instances": [{"b64": base64.b64encode(p.read_bytes()).decode()} for p in big]}
        as_large = client.post("/v1/predict", json=large)
        card = client.get("/v1/model").json()

    assert as_png.status_code == 200, as_png.text
    assert as_png.json()["model_version"] == "v0001"
    assert without_ids(as_png) == expected
    assert as_png.headers["x-model-version"] == "v0001"
    assert "ort;dur=" in as_png.headers["server-timing"]
    assert without_ids(as_array) == expected
    assert without_ids(as_chw) == expected[:2]
    assert len(as_large.request.content) > 64 * 1024
    assert without_ids(as_large) == expected_large
    # Every prediction carries its own id, for feedback that refers to it.
    ids = [p["prediction_id"] for r in (as_png, as_array) for p in r.json()["predictions"]]
    assert len(set(ids)) == len(ids) == 24
    assert card["version"] == "v0001" and card["sha256"] == registry.card("v0001").sha256


# --- hot swap --------------------------------------------------------------------------


@pytest.mark.slow
def test_swap_under_load_fails_no_request(workspace: Any, onnx_models: dict[str, Path]) -> None:
    params, layout, registry = workspace
    body = {"instances": [png_b64(x) for x in random_images(2)]}
    stop = threading.Event()

    with serving(params, layout) as (server, _):

        def hammer() -> tuple[int, set[str], list[str]]:
            ok, versions, failures = 0, set(), []
            with httpx.Client(base_url=server.url, timeout=60) as client:
                while not stop.is_set():
                    try:
                        r = client.post("/v1/predict", json=body)
                    except httpx.HTTPError as err:
                        failures.append(repr(err))
                        continue
                    if r.status_code != 200:
                        failures.append(f"{r.status_code} {r.text}")
                        continue
                    ok += 1
                    versions.add(r.json()["model_version"])
                    answered.add(threading.get_ident())
                    live.add(r.json()["model_version"])
            return ok, versions, failures

        answered: set[int] = set()
        live: set[str] = set()
        with ThreadPoolExecutor(16) as pool:
            clients = [pool.submit(hammer) for _ in range(16)]
            # Every client is answered by the old model first (on a busy machine the first
            # answers take longer than any fixed pause).
            wait_for(lambda: len(answered) == 16, timeout=60)
            registry.register(onnx_models["b"], onnx_models["spec"], card_fields())
            registry.promote("v0002")
            with httpx.Client(base_url=server.url) as probe:
                wait_for(lambda: probe.get("/v1/model").json().get("version") == "v0002")
            # Until the hammering clients themselves are answered by the new model (a fixed
            # pause may pass on a loaded machine before any of them gets another answer).
            wait_for(lambda: "v0002" in live)
            stop.set()
            results = [c.result() for c in clients]
        metrics = httpx.get(f"{server.url}/metrics").text

    failures = [f for _, _, fs in results for f in fs]
    seen = set().union(*(v for _, v, _ in results))
    assert failures == []
    # Every client got answers through the swap, from the old model and then the new one
    # (how many depends on the machine's speed, so only "some from each" is asserted).
    assert all(ok > 0 for ok, _, _ in results)
    assert seen == {"v0001", "v0002"}
    assert metric_value(metrics, "flywheel_model_info", version="v0002") == 1.0
    assert metric_value(metrics, "flywheel_model_info", version="v0001") == 0.0
    # Many clients at once: the batcher must have coalesced some of them.
    assert metric_value(metrics, "flywheel_batch_size_bucket", le="1.0") < metric_value(
        metrics, "flywheel_batch_size_count"
    )


def stage_version(registry: Registry, version: str, model: bytes, spec: Path, sha: str) -> None:
    """A version folder written by hand, as a broken pipeline or a bad disk could leave it."""
    folder = registry.version_dir(version)
    folder.mkdir(parents=True)
    (folder / "model.onnx").write_bytes(model)
    shutil.copyfile(spec, folder / "preprocessing.json")
    card = registry.card("v0001").model_copy(update={"version": version, "sha256": sha})
    card.save(folder / "card.json")


def point_production_at(registry: Registry, version: str) -> None:
    # promote() would verify and refuse; write the alias the way a rogue tool might.
    alias = {"version": version, "history": ["v0001", version]}
    registry.alias_path.write_text(json.dumps(alias))


@pytest.mark.slow
def test_broken_models_are_refused_and_old_one_keeps_serving(
    workspace: Any, onnx_models: dict[str, Path]
) -> None:
    params, layout, registry = workspace
    truncated = onnx_models["b"].read_bytes()[:500]
    # Its card names the truncated bytes, so the sha check passes and the load itself fails.
    stage_version(
        registry, "v0002", truncated, onnx_models["spec"], hashlib.sha256(truncated).hexdigest()
    )
    registry.register(onnx_models["b"], onnx_models["spec"], card_fields())  # v0003
    with registry.model_path("v0003").open("r+b") as fh:
        fh.seek(200)
        fh.write(b"\x00\x01\x02\x03")
    body = {"instances": [png_b64(random_images(1)[0])]}

    with serving(params, layout) as (_, client):
        for version, reason in (("v0002", "load"), ("v0003", "integrity")):
            point_production_at(registry, version)
            wait_for(
                lambda r=reason: (
                    metric_value(
                        client.get("/metrics").text, "flywheel_model_load_refused_total", reason=r
                    )
                    # At least once: by the time a loaded machine polls, the back-off may
                    # already have retried it.
                    >= 1.0
                )
            )
            r = client.post("/v1/predict", json=body)
            assert r.status_code == 200 and r.json()["model_version"] == "v0001"
            # The probe says ready and nothing more; why a load was refused is in the log.
            ready = client.get("/readyz")
            assert ready.status_code == 200 and ready.json() == {"ready": True}
            assert client.get("/v1/model").json()["version"] == "v0001"
        # A refused version is retried on a doubling back-off (a refusal under memory
        # pressure may pass later), not on every poll: 20 polls here, at most 5 retries.
        # A loaded machine stretches the window, so the bound comes from its measured length:
        # attempts a doubling back-off from one poll (0.05 s) fits in W seconds are at most
        # log2(W / 0.05 + 1) + 1, against W / 0.05 polls (5 in the nominal second, not 20).
        opened = time.monotonic()
        before = metric_value(
            client.get("/metrics").text, "flywheel_model_load_refused_total", reason="integrity"
        )
        time.sleep(20 * 0.05)
        text = client.get("/metrics").text
        window = time.monotonic() - opened
        after = metric_value(text, "flywheel_model_load_refused_total", reason="integrity")
        assert before <= after <= before + math.floor(math.log2(window / 0.05 + 1) + 1)
        # A good version after the broken ones still goes live.
        registry.promote("v0001")
        registry.register(onnx_models["b"], onnx_models["spec"], card_fields())  # v0004
        registry.promote("v0004")
        wait_for(lambda: client.get("/v1/model").json()["version"] == "v0004")


@pytest.mark.slow
def test_not_ready_until_a_model_is_promoted(
    tmp_path: Path, raw_params: dict[str, Any], onnx_models: dict[str, Path]
) -> None:
    params = make_params(raw_params, tmp_path)
    layout = Layout.from_params(params, tmp_path)
    with serving(params, layout) as (_, client):
        assert client.get("/healthz").status_code == 200
        not_ready = client.get("/readyz")
        assert not_ready.status_code == 503 and not_ready.json() == {"ready": False}
        r = client.post("/v1/predict", json={"instances": [png_b64(random_images(1)[0])]})
        assert r.status_code == 503 and r.json()["kind"] == "not_ready"
        registry = Registry(layout.registry)
        registry.register(onnx_models["a"], onnx_models["spec"], card_fields())
        registry.promote("v0001")
