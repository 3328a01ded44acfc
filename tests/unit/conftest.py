"""One tiny trained workspace for every model test: digits, preprocessed, trained once.

Stages write into it in pipeline order through the ``exported`` and ``compressed``
fixtures, so each test file can ask for exactly the stage it checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from torch import nn

from flywheel.core.config import Params, parse_params
from flywheel.core.layout import Layout
from flywheel.datasets.arrays import load_split
from flywheel.datasets.digits import DIGITS_LABELS, materialise_digits
from flywheel.families.image.manifest import build_manifest
from flywheel.families.image.pixels import PreprocessingSpec
from flywheel.nn.checkpoint import load_network
from flywheel.stages.preprocess import run as run_preprocess
from flywheel.stages.train import run as run_train

RAW_PARAMS: dict[str, Any] = {
    "seed": 7,
    "validate": {"suite": "digits", "labels": list(DIGITS_LABELS)},
    "image": {"size": 8, "mode": "L"},
    "split": {"val": 0.15, "test": 0.2},
    "model": {"channels": [32, 64], "hidden": [128], "dropout": 0.1},
    "train": {"max_epochs": 12, "batch_size": 64, "lr": 0.003, "accelerator": "cpu"},
    "compress": {
        "prune_ratios": [0.5],
        "finetune_epochs": 3,
        "calibration_samples": 128,
        "per_channel": True,
        "variants": ["fp32", "int8", "pruned-fp32", "pruned-int8"],
    },
    "evaluate": {
        "latency_runs": 40,
        "warmup_runs": 5,
        "throughput_batch": 32,
        "throughput_runs": 5,
        "intra_op_threads": 1,
    },
    "gate": {"max_drop": 0.01},
}


@dataclass(frozen=True)
class Workspace:
    params: Params
    layout: Layout
    spec: PreprocessingSpec

    def network(self) -> nn.Module:
        return load_network(self.layout.checkpoint, self.params, self.spec)

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        return load_split(self.layout.split_file(name))


@pytest.fixture(scope="session")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    root: Path = tmp_path_factory.mktemp("model-ws")
    params = parse_params(RAW_PARAMS, "tests/model/conftest.py")
    layout = Layout.from_params(params, root)
    materialise_digits(layout.data)
    manifest = layout.accepted_manifest
    manifest.parent.mkdir(parents=True, exist_ok=True)
    build_manifest(layout.data)[["path", "label", "sha256"]].to_csv(manifest, index=False)
    run_preprocess(params, layout)
    run_train(params, layout)
    return Workspace(params, layout, PreprocessingSpec.load(layout.preprocessing_spec))


@pytest.fixture(scope="session")
def exported(workspace: Workspace) -> dict[str, object]:
    from flywheel.stages.export import run as run_export

    return run_export(workspace.params, workspace.layout)


@pytest.fixture(scope="session")
def compressed(workspace: Workspace, exported: dict[str, object]) -> dict[str, dict[str, Any]]:
    from flywheel.stages.compress.run import run as run_compress

    return run_compress(workspace.params, workspace.layout)
