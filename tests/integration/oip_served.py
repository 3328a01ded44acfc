"""The model every /v2 test serves, per family: a real `flywheel serve` process on a
registry whose production is a stub graph whose classes score differently, and the
requests and answers that stand for one another across /v1, /v2 and ``flywheel predict``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import pytest
from onnx import TensorProto
from tests.faults.hostile_server import LABELS, ServerProcess, build_project
from tests.served_models import stub_model

from flywheel.release.predictor import Predictor
from flywheel.release.registry import Registry

TASKS = ("image_classification", "text_classification", "sentiment", "tabular_regression")
# The model's input type and rank per family (the stub graph sums whatever it is given).
GRAPH = {
    "image_classification": (TensorProto.FLOAT, 4),
    "text_classification": (TensorProto.INT64, 2),
    "sentiment": (TensorProto.INT64, 2),
    "tabular_regression": (TensorProto.FLOAT, 2),
}
TEXTS = ["a good day", "bad news again", "good news today, 好 день ☃"]
ROWS = [
    {"size": 12.0, "rooms": 2.0, "kind": "flat", "city": "north"},
    {"size": 30.5, "rooms": 4.0, "kind": "house", "city": None},
    {"size": 8.25, "rooms": 1.0, "kind": "flat", "city": "south"},
]


@dataclass
class Served:
    task: str
    url: str
    version: str
    predictor: Predictor


@pytest.fixture(scope="module", params=TASKS, name="served")
def served_fixture(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    task = request.param
    if task == "sentiment":
        pytest.importorskip("tokenizers")
    root = build_project(tmp_path_factory.mktemp(task) / "project", task, {})
    registry = Registry(root / "registry")
    # A third version whose classes score differently, so predictions carry information.
    fields = registry.card("v0001").model_dump(
        include={
            "task",
            "labels",
            "data_hash",
            "params_hash",
            "code_version",
            "variant",
            "recipe",
            "metrics",
            "params",
            "evaluation",
        }
    )
    outputs = 1 if task == "tabular_regression" else len(LABELS)
    model = stub_model(root / "spread.onnx", *GRAPH[task], outputs, 0.05, spread=1.0)
    version = registry.register(model, root / "spec.json", fields).version
    registry.promote(version)
    with ServerProcess(root) as server:
        yield Served(task, server.url, version, Predictor.from_registry(registry, version))


def v1_instances(task: str) -> list[Any]:
    if task == "image_classification":
        return [pixels(i).tolist() for i in range(3)]
    if task == "tabular_regression":
        return ROWS
    return TEXTS


def pixels(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (1, 8, 8)).astype(np.uint8)


def v2_tensors(task: str) -> list[tuple[str, str, np.ndarray]]:
    """(name, datatype, array) per input, standing for :func:`v1_instances`."""
    if task == "image_classification":
        return [("image", "UINT8", np.stack([pixels(i) for i in range(3)]))]
    if task == "tabular_regression":
        return [
            ("size", "FP32", np.array([r["size"] for r in ROWS], dtype=np.float32)),
            ("rooms", "FP32", np.array([r["rooms"] for r in ROWS], dtype=np.float32)),
            ("kind", "BYTES", np.array([r["kind"].encode() for r in ROWS], dtype=object)),
            ("city", "BYTES", np.array([(r["city"] or "").encode() for r in ROWS], dtype=object)),
        ]
    return [("text", "BYTES", np.array([t.encode() for t in TEXTS], dtype=object))]


def as_columns(predictions: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """/v1 predictions as the v2 output tensors they should equal."""
    if "value" in predictions[0]:
        return {"value": np.array([p["value"] for p in predictions])}
    return {
        "label": np.array([p["label"] for p in predictions]),
        "probabilities": np.array(
            [[p["probabilities"][lab] for lab in LABELS] for p in predictions]
        ),
    }


def assert_same(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    assert set(got) == set(want)
    for name, expected in want.items():
        value = got[name]
        if expected.dtype.kind in "OUS":
            assert [v.decode() if isinstance(v, bytes) else v for v in value.ravel()] == list(
                expected
            )
        else:
            np.testing.assert_allclose(value, expected, rtol=1e-6, atol=1e-6)


def v1_predictions(served: Served) -> list[dict[str, Any]]:
    r = httpx.post(
        f"{served.url}/v1/predict", json={"instances": v1_instances(served.task)}, timeout=30
    )
    assert r.status_code == 200, r.text
    return r.json()["predictions"]
