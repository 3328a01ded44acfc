"""The model server over real HTTP: uvicorn on a free loopback port, a temp registry, small
random-weight ConvNets (8x8 grey, labels "0".."9") exported with the project's exporter."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import uvicorn

from flywheel.core.config import Params, parse_params
from flywheel.core.errors import ConfigError
from flywheel.core.layout import Layout
from flywheel.datasets.png import encode_png
from flywheel.families.image.pixels import PreprocessingSpec
from flywheel.release.predictor import Predictor
from flywheel.release.registry import Registry
from flywheel.serving.app import create_app
from flywheel.serving.auth import TOKEN_ENV, is_loopback
from flywheel.serving.batcher import MicroBatcher
from flywheel.serving.server import run_server
from flywheel.serving.telemetry import ServingMetrics

LABELS = tuple(str(i) for i in range(10))
SIZE = 8
BODY_LIMIT = 256 * 1024
MAX_INSTANCES = 32


# --- fixtures --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def onnx_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two different exported networks and their preprocessing spec, built once per module."""
    import torch

    from flywheel.families.image.network import ConvNet
    from flywheel.nn.onnx_export import export_onnx

    out = tmp_path_factory.mktemp("onnx")
    models = {}
    for name, seed in (("a", 1), ("b", 2)):
        torch.manual_seed(seed)
        net = ConvNet(1, SIZE, len(LABELS), channels=(4, 8))
        models[name] = export_onnx(net, (1, SIZE, SIZE), out / f"{name}.onnx")
    spec = PreprocessingSpec(size=SIZE, mode="L", mean=(0.3,), std=(0.25,), labels=LABELS)
    spec.save(out / "preprocessing.json")
    models["spec"] = out / "preprocessing.json"
    return models


def card_fields(variant: str = "fp32") -> dict[str, Any]:
    return {
        "task": "image_classification",
        "labels": LABELS,
        "data_hash": "test-data",
        "params_hash": "test-params",
        "code_version": "test",
        "variant": variant,
        "recipe": {},
        "metrics": {"accuracy": 0.5},
        "params": {},
        "evaluation": {},
    }


def make_params(raw: dict[str, Any], root: Path, **serve: Any) -> Params:
    raw["paths"] = {"artifacts": "artifacts", "registry": "registry", "expectations": "exp"}
    raw["data"] = {"path": "data", "kind": "image_folder", "feedback_inbox": "feedback"}
    raw["serve"] = {
        **raw["serve"],
        "poll_interval_s": 0.05,
        "max_body_bytes": BODY_LIMIT,
        "max_instances": MAX_INSTANCES,
        **serve,
    }
    return parse_params(raw, "test")


@pytest.fixture
def workspace(tmp_path: Path, raw_params: dict[str, Any], onnx_models: dict[str, Path]) -> Any:
    """A root whose registry holds model "a" as v0001 in production."""
    params = make_params(raw_params, tmp_path)
    layout = Layout.from_params(params, tmp_path)
    registry = Registry(layout.registry)
    registry.register(onnx_models["a"], onnx_models["spec"], card_fields())
    registry.promote("v0001")
    return params, layout, registry


class LiveServer:
    """uvicorn on a socket this process bound, so the port is free and known before start."""

    def __init__(self, app: Any) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)
        self.sock.close()


@contextlib.contextmanager
def serving(
    params: Params, layout: Layout, token: str | None = None
) -> Iterator[tuple[LiveServer, httpx.Client]]:
    app = create_app(params, layout, api_token=token)
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        yield server, client


def png_b64(pixels: np.ndarray) -> dict[str, str]:
    return {"b64": base64.b64encode(encode_png(pixels)).decode()}


def random_images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, SIZE, SIZE), dtype=np.uint8)


def wait_for(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


def metric_value(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        series, _, value = line.rpartition(" ")
        got = dict(re.findall(r'(\w+)="([^"]*)"', series))
        if series.split("{")[0] == name and all(got.get(k) == v for k, v in labels.items()):
            return float(value)
    return 0.0


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
            with httpx.Client(base_url=server.url, timeout=10) as client:
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
            return ok, versions, failures

        answered: set[int] = set()
        with ThreadPoolExecutor(16) as pool:
            clients = [pool.submit(hammer) for _ in range(16)]
            # Every client is answered by the old model first (on a busy machine the first
            # answers take longer than any fixed pause).
            wait_for(lambda: len(answered) == 16, timeout=60)
            registry.register(onnx_models["b"], onnx_models["spec"], card_fields())
            registry.promote("v0002")
            with httpx.Client(base_url=server.url) as probe:
                wait_for(lambda: probe.get("/v1/model").json().get("version") == "v0002")
            time.sleep(0.5)
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
        before = metric_value(
            client.get("/metrics").text, "flywheel_model_load_refused_total", reason="integrity"
        )
        time.sleep(20 * 0.05)
        text = client.get("/metrics").text
        after = metric_value(text, "flywheel_model_load_refused_total", reason="integrity")
        assert before <= after <= before + 5
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
        wait_for(lambda: client.get("/readyz").status_code == 200)


# --- bad input -------------------------------------------------------------------------


def raw_request(port: int, head: bytes, chunks: list[bytes]) -> tuple[int, bytes]:
    """Speak HTTP/1.1 by hand, for bodies httpx will not send (lying or missing lengths)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        try:
            sock.sendall(head)
            for chunk in chunks:
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before the rest is sent
        data = b""
        with contextlib.suppress(ConnectionResetError):
            while b"\r\n\r\n" not in data or len(data) < data.find(b"\r\n\r\n") + 4 + 10:
                part = sock.recv(65536)
                if not part:
                    break
                data += part
    status = int(data.split(b" ", 2)[1])
    return status, data.partition(b"\r\n\r\n")[2]


def chunked(payload: bytes, size: int = 8192) -> list[bytes]:
    parts = [payload[i : i + size] for i in range(0, len(payload), size)]
    return [b"%x\r\n%s\r\n" % (len(p), p) for p in parts] + [b"0\r\n\r\n"]


MALFORMED: list[tuple[str, bytes]] = [
    ("empty body", b""),
    ("not json", b"instances please"),
    ("truncated json", b'{"instances": [[1, 2'),
    ("bad utf-8", b'{"instances": ["\xff\xfe"]}'),
    ("json list", b"[1, 2, 3]"),
    ("json string", b'"hello"'),
    ("missing instances", b'{"inputs": []}'),
    ("instances not a list", b'{"instances": 5}'),
    ("instances object", b'{"instances": {"b64": ""}}'),
    ("empty batch", b'{"instances": []}'),
    ("null instance", b'{"instances": [null]}'),
    ("number instance", b'{"instances": [3]}'),
    ("string instance", b'{"instances": ["abc"]}'),
    ("wrong shape", json.dumps({"instances": [[[0] * 7] * 8]}).encode()),
    ("wrong channels", json.dumps({"instances": [[[[0] * 8] * 8] * 3]}).encode()),
    ("ragged", json.dumps({"instances": [[[0] * 8] * 7 + [[0] * 5]]}).encode()),
    ("too deep", json.dumps({"instances": [[[[[0] * 8] * 8]]]}).encode()),
    ("strings as pixels", json.dumps({"instances": [[["1"] * 8] * 8]}).encode()),
    ("bools as pixels", json.dumps({"instances": [[[True] * 8] * 8]}).encode()),
    ("pixel above 255", json.dumps({"instances": [[[300] * 8] * 8]}).encode()),
    ("negative pixel", json.dumps({"instances": [[[-1] * 8] * 8]}).encode()),
    ("huge int pixel", json.dumps({"instances": [[[10**400] * 8] * 8]}).encode()),
    (
        "NaN literal",
        b'{"instances": [[' + b",".join([b"[" + b",".join([b"NaN"] * 8) + b"]"] * 8) + b"]]}",
    ),
    ("Infinity literal", b'{"instances": [[[Infinity, 0, 0, 0, 0, 0, 0, 0]]]}'),
    (
        "overflowing float",
        json.dumps({"instances": [[[0.0] * 8] * 8]}).replace("0.0", "1e999", 1).encode(),
    ),
    ("not base64", b'{"instances": [{"b64": "not base64!!"}]}'),
    (
        "base64 of text",
        json.dumps({"instances": [{"b64": base64.b64encode(b"hi").decode()}]}).encode(),
    ),
    ("b64 not a string", b'{"instances": [{"b64": 5}]}'),
    ("extra key", json.dumps({"instances": [{"b64": "", "path": "/etc/passwd"}]}).encode()),
    ("model path", b'{"instances": [{"model": "/tmp/evil.onnx"}]}'),
    ("deep nesting", b'{"instances": ' + b"[" * 30_000 + b"]" * 30_000 + b"}"),
    ("too many", json.dumps({"instances": [[[0] * 8] * 8] * (MAX_INSTANCES + 1)}).encode()),
    ("long integer", b'{"instances": [' + b"9" * 5000 + b"]}"),
]


@pytest.mark.slow
def test_malformed_requests_get_4xx_and_server_stays_up(workspace: Any) -> None:
    params, layout, _ = workspace
    with serving(params, layout) as (server, client):
        statuses = {}
        for name, body in MALFORMED:
            r = client.post(
                "/v1/predict", content=body, headers={"content-type": "application/json"}
            )
            statuses[name] = r.status_code
            assert 400 <= r.status_code < 500, (name, r.status_code, r.text)
            assert r.json()["error"], name
        assert statuses["too many"] == 413
        assert client.get("/v1/predict").status_code == 405
        assert client.get("/v1/nothing").status_code == 404

        big = json.dumps({"instances": [[[255] * 8] * 8] * 1000}).encode()
        assert len(big) > BODY_LIMIT
        r = client.post("/v1/predict", content=big)
        assert r.status_code == 413 and r.json()["kind"] == "body_too_large"
        # Chunked, no Content-Length: cut off while streaming.
        head = b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        status, reply = raw_request(server.port, head, chunked(big))
        assert status == 413, reply
        # A declared length over the limit is refused before any body is read.
        head = b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n\r\n"
        assert raw_request(server.port, head, [])[0] == 413

        assert client.get("/healthz").status_code == 200
        ok = client.post("/v1/predict", json={"instances": [[[0] * 8] * 8]})
        assert ok.status_code == 200
        text = client.get("/metrics").text
    assert metric_value(text, "flywheel_errors_total", kind="body_too_large") == 3.0
    assert metric_value(text, "flywheel_errors_total", kind="invalid_instance") >= 10
    assert (
        metric_value(text, "flywheel_http_requests_total", route="/v1/predict", status="500") == 0
    )


# --- security --------------------------------------------------------------------------


def test_loopback_rule() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.1.2.3") and not is_loopback("host")


def test_non_loopback_bind_without_token_refuses(
    tmp_path: Path, raw_params: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    params = make_params(raw_params, tmp_path)
    with pytest.raises(ConfigError, match=TOKEN_ENV):
        run_server(params, tmp_path, host="0.0.0.0", port=0)


@pytest.mark.slow
def test_token_required_except_on_probes(workspace: Any) -> None:
    params, layout, _ = workspace
    body = {"instances": [[[0] * 8] * 8]}
    with serving(params, layout, token="s3cret-token") as (_, client):
        assert client.post("/v1/predict", json=body).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert client.post("/v1/predict", json=body, headers=wrong).status_code == 401
        assert client.get("/metrics").status_code == 401
        assert client.get("/v1/model").status_code == 401
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 200
        good = {"Authorization": "Bearer s3cret-token"}
        assert client.post("/v1/predict", json=body, headers=good).status_code == 200
        assert client.get("/metrics", headers=good).status_code == 200


# --- feedback --------------------------------------------------------------------------


@pytest.mark.slow
def test_feedback_is_stored_durably_and_retrievable(
    workspace: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    params, layout, _ = workspace
    synced: list[int] = []
    renamed: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def spy_fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    def spy_replace(src: Any, dst: Any) -> None:
        renamed.append(str(dst))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", spy_fsync)
    monkeypatch.setattr(os, "replace", spy_replace)
    pixels = random_images(1, seed=5)[0]
    inbox = layout.root / "feedback"

    with serving(params, layout) as (_, client):
        r = client.post("/v1/feedback", json={"instance": png_b64(pixels), "label": "7"})
        assert r.status_code == 201, r.text
        png_id = r.json()["id"]
        r = client.post("/v1/feedback", json={"instance": pixels.tolist(), "label": "3"})
        array_id = r.json()["id"]
        record = client.get(f"/v1/feedback/{png_id}").json()
        bad_label = client.post("/v1/feedback", json={"instance": pixels.tolist(), "label": "x"})
        bad_instance = client.post("/v1/feedback", json={"instance": [[1]], "label": "3"})
        traversal = client.post("/v1/feedback", json={"instance": pixels.tolist(), "label": "../3"})
        missing = client.get("/v1/feedback/" + "0" * 32)

    assert (inbox / "7" / f"{png_id}.png").read_bytes() == encode_png(pixels)
    # Raw pixels are kept as the same PNG the image folder would hold.
    assert (inbox / "3" / f"{array_id}.png").read_bytes() == encode_png(pixels)
    sidecar = json.loads((inbox / "7" / f"{png_id}.json").read_text())
    assert sidecar == record
    assert sidecar["model_version"] == "v0001" and sidecar["label"] == "7"
    assert sidecar["file"] == f"7/{png_id}.png" and sidecar["received_at"]
    assert str(inbox / "7" / f"{png_id}.png") in renamed
    assert str(inbox / "7" / f"{png_id}.json") in renamed
    assert len(synced) >= 4
    assert not [p for p in inbox.rglob("*") if p.name.startswith(".")]  # no temp files left
    assert not layout.data.exists()  # never the training data folder
    assert bad_label.status_code == 400 and bad_label.json()["kind"] == "unknown_label"
    assert bad_instance.status_code == 400
    assert traversal.status_code == 400
    assert missing.status_code == 404


def test_feedback_inbox_inside_data_is_refused(tmp_path: Path, raw_params: dict[str, Any]) -> None:
    raw_params["data"] = {"path": "data", "feedback_inbox": "data/feedback"}
    params = parse_params(raw_params, "test")
    with pytest.raises(ConfigError, match="outside the training data"):
        create_app(params, Layout.from_params(params, tmp_path))


# --- metrics ---------------------------------------------------------------------------


@pytest.mark.slow
def test_metrics_count_requests_batches_and_version(workspace: Any) -> None:
    params, layout, _ = workspace
    with serving(params, layout) as (_, client):
        for _ in range(3):
            client.post("/v1/predict", json={"instances": [[[0] * 8] * 8] * 2})
        client.post("/v1/predict", json={"instances": []})
        r = client.get("/metrics")
    text = r.text
    assert r.headers["content-type"].startswith("text/plain")
    route = "/v1/predict"
    assert metric_value(text, "flywheel_http_requests_total", route=route, status="200") == 3
    assert metric_value(text, "flywheel_http_requests_total", route=route, status="400") == 1
    assert metric_value(text, "flywheel_http_request_duration_seconds_count", route=route) == 4
    assert metric_value(text, "flywheel_batch_size_count") == 3
    assert metric_value(text, "flywheel_batch_size_sum") == 6
    assert metric_value(text, "flywheel_model_info", version="v0001", variant="fp32") == 1
    assert metric_value(text, "flywheel_errors_total", kind="invalid_request") == 1
    assert "flywheel_model_load_refused_total" in text or "flywheel_model_load_refused" in text


# --- micro-batching --------------------------------------------------------------------


class _FakeModel:
    version = "v9999"

    def __init__(self) -> None:
        self.batches: list[int] = []

    def predict(self, rows: np.ndarray) -> tuple[list[Any], float]:
        self.batches.append(len(rows))
        return [int(r) for r in rows[:, 0]], 0.0


def test_batcher_coalesces_waiting_requests_and_never_mixes_models() -> None:
    async def scenario() -> tuple[list[int], list[int], list[list[Any]], float]:
        batcher = MicroBatcher(max_batch=4, max_wait_ms=1000, metrics=ServingMetrics())
        batcher.start()
        a, b = _FakeModel(), _FakeModel()
        futures = []
        # Seven requests in the server at once: the batcher waits for all of them (up to
        # the limit of 4 rows) rather than sending the first alone.
        async with contextlib.AsyncExitStack() as stack:
            for _ in range(7):
                await stack.enter_async_context(batcher.admission())
            for i in range(5):
                futures.append(batcher.enqueue(a, np.array([[i]])))
            futures.append(batcher.enqueue(b, np.array([[9]])))
            futures.append(batcher.enqueue(a, np.array([[8, 8]])))
        results = await asyncio.gather(*futures)
        lone_start = time.perf_counter()
        async with batcher.admission():
            lone = batcher.enqueue(a, np.array([[7]]))
        await lone
        lone_s = time.perf_counter() - lone_start
        await batcher.close()
        return a.batches, b.batches, [r.predictions for r in results], lone_s

    a_batches, b_batches, predictions, lone_s = asyncio.run(scenario())
    # Another model, or rows of another shape, start a new batch.
    assert a_batches == [4, 1, 1, 1]
    assert b_batches == [1]
    assert predictions == [[0], [1], [2], [3], [4], [9], [8]]
    assert lone_s < 0.5  # nothing else in the server: no reason to wait the full second


def test_batcher_counts_its_backlog() -> None:
    async def scenario() -> tuple[list[int], bool]:
        batcher = MicroBatcher(max_batch=4, max_wait_ms=1000, metrics=ServingMetrics())
        batcher.start()
        model = _FakeModel()
        seen = []
        async with contextlib.AsyncExitStack() as stack:
            for _ in range(2):  # requests still in admission: the collector keeps waiting
                await stack.enter_async_context(batcher.admission())
            futures = [batcher.enqueue(model, np.array([[i], [i]])) for i in range(3)]
            seen.append(batcher.backlog_rows)
        await asyncio.gather(*futures)
        seen.append(batcher.backlog_rows)
        async with batcher.admission():
            futures = [batcher.enqueue(model, np.array([[5]]))]
        seen.append(batcher.backlog_rows)
        await batcher.close()
        return seen, futures[0].done()

    seen, _ = asyncio.run(scenario())
    assert seen[:2] == [6, 0]  # six rows waited; every batch taken leaves the count
    assert seen[2] in (0, 1)


@pytest.mark.slow
def test_overload_gets_503_with_retry_after_and_the_server_recovers(
    tmp_path: Path, raw_params: dict[str, Any], onnx_models: dict[str, Path]
) -> None:
    # One queued row is the limit, and a batch waits up to a second for company: any burst
    # of concurrent requests overflows it.
    params = make_params(raw_params, tmp_path, max_queued_rows=1, max_wait_ms=1000.0)
    layout = Layout.from_params(params, tmp_path)
    registry = Registry(layout.registry)
    registry.register(onnx_models["a"], onnx_models["spec"], card_fields())
    registry.promote("v0001")
    body = {"instances": [png_b64(random_images(1)[0])]}
    with serving(params, layout) as (_server, client):
        wait_for(lambda: client.get("/readyz").status_code == 200)
        refused: list[httpx.Response] = []
        served = 0
        for _ in range(5):
            with ThreadPoolExecutor(max_workers=32) as pool:
                answers = list(pool.map(lambda _: client.post("/v1/predict", json=body), range(64)))
            assert {a.status_code for a in answers} <= {200, 503}
            refused += [a for a in answers if a.status_code == 503]
            served += sum(a.status_code == 200 for a in answers)
            if refused:
                break
        assert refused and served
        assert refused[0].headers["retry-after"] == "1"
        assert refused[0].json()["kind"] == "overloaded"
        assert "serve.max_queued_rows" in refused[0].json()["error"]
        assert client.post("/v1/predict", json=body).status_code == 200  # the burst is over
        metrics = client.get("/metrics").text
        assert metric_value(metrics, "flywheel_errors_total", kind="overloaded") == len(refused)
