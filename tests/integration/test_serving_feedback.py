"""Feedback sent to the model server over real HTTP: stored durably in the inbox,
retrievable, bad labels and instances refused; an inbox inside the training data is refused."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from tests.integration.serving_helpers import (
    png_b64,
    random_images,
    serving,
)

from flywheel.core.config import parse_params
from flywheel.core.errors import ConfigError
from flywheel.core.layout import Layout
from flywheel.datasets.png import encode_png
from flywheel.serving.app import create_app

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
