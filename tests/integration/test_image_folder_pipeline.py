"""The real flow on a folder of photo files (JPEG and PNG; RGB, L, RGBA and P; odd sizes)
with a corrupt file and a duplicate: the bad rows are quarantined, the rest trains an RGB
CNN with augmentation, and the deployed model answers new files and base64 instances."""

from __future__ import annotations

import base64
import csv
import json
from pathlib import Path

import numpy as np
import pytest
from tests.photo_folder import LABELS, add_defects, encode, stripes, write_photo_folder

from flywheel.release.predictor import Predictor
from flywheel.release.registry import Registry

pytestmark = [pytest.mark.slow]


def test_photo_folder_quarantines_defects_deploys_and_predicts(
    dvc_project, prefect_backend, tmp_path: Path
) -> None:
    from flows.pipeline import pipeline

    project: Path = dvc_project(
        data={"path": "photos", "kind": "image_folder", "feedback_inbox": "feedback"},
        image={"size": 16, "mode": "RGB", "augment": True},
        validate={
            "suite": "photos",
            "labels": list(LABELS),
            "mostly": 0.95,
            "allowed_modes": ["RGB", "L", "RGBA", "P"],
            "allowed_formats": ["JPEG", "PNG"],
            "min_width": 16,
            "max_width": 512,
            "min_height": 16,
            "max_height": 512,
            "min_rows_per_class": 20,
        },
        model={"channels": [8, 16], "hidden": [32], "dropout": 0.1},
        train={"max_epochs": 12, "patience": 12, "lr": 0.01, "batch_size": 16},
        compress={
            "finetune_epochs": 1,
            "calibration_samples": 32,
            "variants": ["fp32", "int8", "pruned-fp32"],
        },
        gate={"min_accuracy": 0.85, "max_drop": 0.05},
    )
    write_photo_folder(project / "photos", per_class=40)
    defects = add_defects(project / "photos")
    from flywheel.core.config import load_params
    from flywheel.core.layout import Layout
    from flywheel.stages.validate.suite import save_suite

    params = load_params(project / "params.yaml")
    save_suite(params, Layout.from_params(params, project))

    record = json.loads(
        pipeline(params_file=str(project / "params.yaml"), project=str(project))["record"]
    )
    assert record["deploy"]["status"] == "deployed", record

    with (project / "artifacts" / "validation" / "quarantine.csv").open() as f:
        quarantined = {row["path"] for row in csv.DictReader(f)}
    # The copy and the file it copies are both held back: neither can be trusted to be unique.
    assert set(defects) | {"horizontal/000.jpg"} <= quarantined

    registry = Registry(project / "registry")
    card = registry.card(registry.production_version() or "")
    assert card.metrics["accuracy"] >= 0.85
    spec = json.loads(registry.spec_path(card.version).read_text())
    assert spec["mode"] == "RGB" and spec["size"] == 16

    rng = np.random.default_rng(99)
    predictor = Predictor.from_registry(registry)
    files, instances, expected = [], [], []
    for i, (label, mode, fmt) in enumerate(
        [("horizontal", "P", "PNG"), ("vertical", "RGBA", "PNG"), ("vertical", "L", "JPEG")]
    ):
        data = encode(stripes(label, 70 + i, 41, rng), mode, fmt)
        path = tmp_path / f"new{i}.{fmt.lower()}"
        path.write_bytes(data)
        files.append(path)
        instances.append({"b64": base64.b64encode(data).decode()})
        expected.append(label)
    assert [p.label for p in predictor.predict_files(files)] == expected
    assert [p.label for p in predictor.predict_instances(instances)] == expected
