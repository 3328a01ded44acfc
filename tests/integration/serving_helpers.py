"""Helpers for the tests that serve over real HTTP: uvicorn on a free loopback port, the
params and card of a temp registry, request bodies, and reading /metrics. The exported
networks and the workspace they are registered in are fixtures in conftest.py."""

from __future__ import annotations

import base64
import contextlib
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import uvicorn

from flywheel.core.config import Params, parse_params
from flywheel.core.layout import Layout
from flywheel.datasets.png import encode_png
from flywheel.serving.app import create_app

LABELS = tuple(str(i) for i in range(10))
SIZE = 8
BODY_LIMIT = 256 * 1024
MAX_INSTANCES = 32


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
        # The lifespan loads the production model: slow on a loaded machine.
        deadline = time.monotonic() + 60
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
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        yield server, client


def png_b64(pixels: np.ndarray) -> dict[str, str]:
    return {"b64": base64.b64encode(encode_png(pixels)).decode()}


def random_images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, SIZE, SIZE), dtype=np.uint8)


def wait_for(predicate: Any, timeout: float = 60.0) -> None:
    # Generous: what the tests wait on (a hot swap, a model load, a follow from the store)
    # takes far longer on a loaded CI machine than here; a pass returns as soon as it holds.
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
