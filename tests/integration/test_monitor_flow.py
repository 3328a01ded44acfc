"""The monitor flow on a real Prefect server, for every family (tabular, image, text, sentiment):
predictions sent to a real model server are compared with the model's reference profile
(written from its training split), and shifted traffic emits ``flywheel.drift.detected``,
read back through the server's API; unshifted traffic emits nothing. The drift shares go to
``$FLYWHEEL_DRIFT_FIGURES`` (JSON) when set."""

from __future__ import annotations

import base64
import csv
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import yaml
from tests.figures import record_figures
from tests.integration.serving_helpers import LiveServer
from tests.sentiment_data import SENTIMENT_PARAMS
from tests.served_models import registry_with

from flywheel.core.workspace import open_workspace
from flywheel.datasets.png import encode_png
from flywheel.monitor.reference import load_reference, write_reference
from flywheel.release.registry import Registry
from flywheel.serving.app import create_app
from flywheel.triggers.events import DRIFT_DETECTED

pytestmark = [pytest.mark.slow]

Rng = np.random.Generator


def _numbers(rng: Rng, shifted: bool, n: int) -> list[Any]:
    return [{"x": float(x)} for x in rng.normal(2.5 if shifted else 0.0, 1, n)]


def _pixels(rng: Rng, shifted: bool) -> np.ndarray:
    # A new camera: larger, brighter frames with more contrast.
    if shifted:
        return rng.integers(100, 256, (12, 12), dtype=np.uint8)
    return rng.integers(0, 120, (8, 8), dtype=np.uint8)


def _images(rng: Rng, shifted: bool, n: int) -> list[Any]:
    return [{"b64": base64.b64encode(encode_png(_pixels(rng, shifted))).decode()} for _ in range(n)]


_WORDS = ["the", "team", "won", "a", "good", "match", "on", "a", "bad", "day", "in", "town"]


def _texts(rng: Rng, shifted: bool, n: int) -> list[Any]:
    # Shifted: long texts of words the reference never held (another language, spam).
    if shifted:
        return [" ".join(f"zq{rng.integers(10**6)}" for _ in range(40)) for _ in range(n)]
    return [" ".join(rng.choice(_WORDS, int(rng.integers(5, 12)))) for _ in range(n)]


@dataclass(frozen=True)
class Family:
    task: str
    data: dict[str, Any]
    traffic: Callable[[Rng, bool, int], list[Any]]
    # The columns shifted traffic moves (the stub model answers one class whatever it gets).
    drifted: set[str]


FAMILIES = {
    "tabular": Family(
        "tabular_regression",
        {"kind": "table", "path": "table", "numeric_columns": ["x"], "target": "target"},
        _numbers,
        {"x", "prediction_value"},
    ),
    "image": Family(
        "image_classification",
        {"kind": "image_folder", "path": "images"},
        _images,
        {"width", "height", "brightness", "contrast"},
    ),
    "text": Family(
        "text_classification",
        {"kind": "text_folder", "path": "texts"},
        _texts,
        {"n_chars", "n_words", "vocab_coverage"},
    ),
    "sentiment": Family(
        "sentiment",
        {**SENTIMENT_PARAMS["data"], "path": "reviews"},
        _texts,
        {"n_chars", "n_words", "vocab_coverage"},
    ),
}


def _training_split(family: Family, root: Path, rows: int) -> list[dict[str, Any]]:
    """Training data as the validate stage's manifest describes it (what the reference
    profiles), drawn from the same distribution as the unshifted traffic."""
    rng = np.random.default_rng(0)
    data = root / family.data["path"]
    data.mkdir()
    labels = ["neg", "pos"]
    out = []
    for i, instance in enumerate(family.traffic(rng, False, rows)):
        if family.task == "tabular_regression":
            out.append({"path": f"data.csv:{i + 1}", **instance, "target": 2 * instance["x"]})
        elif family.task == "image_classification":
            path = Path(labels[i % 2]) / f"{i}.png"
            (data / path).parent.mkdir(exist_ok=True)
            (data / path).write_bytes(base64.b64decode(instance["b64"]))
            out.append({"path": str(path), "label": labels[i % 2]})
        else:
            label = labels[i % 2]
            out.append({"path": f"{label}/{i}.txt", "label": label, "text": instance})
    if family.task == "tabular_regression":
        lines = ["x,target"] + [f"{r['x']:.5f},{r['target']:.5f}" for r in out]
        (data / "data.csv").write_text("\n".join(lines) + "\n")
    return out


def make_project(root: Path, family: Family, feedback: dict[str, Any] | None = None) -> Any:
    raw, _ = registry_with(family.task, root)
    raw |= {
        "data": family.data,
        "validate": {"suite": "t", "labels": raw["validate"]["labels"]},
        "paths": {"registry": "registry"},
        "monitor": {"min_window": 50, "window": 400},
        "feedback": feedback or {},
    }
    (root / "params.yaml").write_text(yaml.safe_dump(raw))
    rows = _training_split(family, root, 600)
    ws = open_workspace(root / "params.yaml", root)
    ws.layout.preprocessed_dir.mkdir(parents=True)
    if family.task != "tabular_regression":
        ws.layout.validation_dir.mkdir(parents=True)
        with ws.layout.accepted_manifest.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    train = [r["path"] for r in rows]
    ws.layout.split_index.write_text(json.dumps({"train": train, "val": [], "test": []}))
    write_reference(ws, Registry(ws.layout.registry), "v0001", 500)
    return ws


def send(ws: Any, instances: list[Any]) -> None:
    with (
        LiveServer(create_app(ws.params, ws.layout)) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        for chunk in range(0, len(instances), 75):
            body = {"instances": instances[chunk : chunk + 75]}
            answer = client.post("/v1/predict", json=body)
            assert answer.status_code == 200, answer.text


def drift_events(api: str) -> list[dict[str, Any]]:
    body = {"filter": {"event": {"name": [DRIFT_DETECTED]}}, "limit": 50}
    response = httpx.post(f"{api}/events/filter", json=body, timeout=30)
    response.raise_for_status()
    return list(response.json()["events"])


def wait_for_events(api: str, event_id: str, data: Path, timeout: float = 120.0) -> list:
    """This project's drift events, once ``event_id`` is among them. The server persists
    events in the background, so an earlier test's may still land while this one counts:
    only events about this project's data are this test's."""
    deadline = time.monotonic() + timeout
    while True:
        events = [e for e in drift_events(api) if e["resource"].get("flywheel.path") == str(data)]
        if any(e["id"] == event_id for e in events) or time.monotonic() > deadline:
            return events
        time.sleep(0.5)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_shifted_traffic_is_reported_and_emits_drift_unshifted_does_not(
    tmp_path: Path, prefect_backend: None, name: str
) -> None:
    from flows.monitor import monitor
    from prefect.settings import PREFECT_API_URL

    family = FAMILIES[name]
    api = str(PREFECT_API_URL.value())
    ws = make_project(tmp_path, family)
    reference = load_reference(Registry(ws.layout.registry).version_dir("v0001"))
    assert reference is not None and family.drifted <= set(reference["numeric"])
    rng = np.random.default_rng(7)
    params = {"params_file": str(tmp_path / "params.yaml"), "project": str(tmp_path)}

    send(ws, family.traffic(rng, False, 300))
    calm = monitor(**params)
    shutil.rmtree(ws.layout.prediction_log)
    send(ws, family.traffic(rng, True, 300))
    shifted = monitor(**params)

    record_figures(
        "FLYWHEEL_DRIFT_FIGURES",
        name,
        {"unshifted": calm["drift_share"], "shifted": shifted["drift_share"]},
    )
    assert calm["verdict"] == "no drift" and calm["drift_share"] == 0.0, calm
    assert calm["window"] == 300 and "event_id" not in calm
    assert shifted["verdict"] == "drift", shifted
    assert set(shifted["drifted_features"]) == family.drifted, shifted
    # One event for this project's data: the shifted window's; the calm one sent none.
    (event,) = wait_for_events(api, shifted["event_id"], ws.layout.data.resolve())
    assert event["id"] == shifted["event_id"]
    assert event["resource"]["flywheel.model_version"] == "v0001"
    share = shifted["drift_share"]
    assert event["payload"]["drift_share"] == share >= ws.params.monitor.threshold
    # The server exports the latest report.
    with (
        LiveServer(create_app(ws.params, ws.layout)) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        metrics = client.get("/metrics").text
    assert f'flywheel_drift_share_ratio{{model_version="v0001"}} {share}' in metrics
