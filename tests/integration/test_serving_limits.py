"""The model server's limits over real HTTP: malformed and oversized bodies get a 4xx
and the server stays up; the micro-batcher coalesces and counts its backlog; overload gets
a 503 with Retry-After and the server recovers."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from tests.integration.serving_helpers import (
    BODY_LIMIT,
    MAX_INSTANCES,
    card_fields,
    make_params,
    metric_value,
    png_b64,
    random_images,
    serving,
    wait_for,
)

from flywheel.core.layout import Layout
from flywheel.release.registry import Registry
from flywheel.serving.batcher import MicroBatcher
from flywheel.serving.telemetry import ServingMetrics

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


# --- micro-batching --------------------------------------------------------------------


WINDOW_S = 120.0


class _FakeModel:
    version = "v9999"

    def __init__(self) -> None:
        self.batches: list[int] = []

    def predict(self, rows: np.ndarray) -> tuple[list[Any], float]:
        self.batches.append(len(rows))
        return [int(r) for r in rows[:, 0]], 0.0


def test_batcher_coalesces_waiting_requests_and_never_mixes_models() -> None:
    async def scenario() -> tuple[list[int], list[int], list[list[Any]], float]:
        # A two-minute window: a batcher that waited it out for the lone request cannot be
        # mistaken for a slow machine, however loaded.
        batcher = MicroBatcher(max_batch=4, max_wait_ms=WINDOW_S * 1000, metrics=ServingMetrics())
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
    assert lone_s < WINDOW_S / 2  # nothing else in the server: no reason to wait the window


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
