"""Integration fixtures: a real DVC + git project in a temp folder, a real Prefect backend,
and the model server tests' exported networks and registry workspace."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from flywheel.pipeline.dvc import init_repository

PROJECT = Path(__file__).resolve().parents[2]

# Tiny but real settings: every stage runs, nothing takes long.
FAST_PARAMS: dict[str, dict[str, Any]] = {
    "train": {"max_epochs": 4, "patience": 2},
    "compress": {"finetune_epochs": 1, "calibration_samples": 64},
    "evaluate": {"latency_runs": 20, "warmup_runs": 3, "throughput_runs": 3},
    "gate": {"min_accuracy": 0.8},
}


def write_params(path: Path, overrides: dict[str, dict[str, Any]]) -> None:
    raw = yaml.safe_load((PROJECT / "params.yaml").read_text())
    for section, values in overrides.items():
        if isinstance(values, dict):
            raw.setdefault(section, {}).update(values)
        else:
            raw[section] = values
    path.write_text(yaml.safe_dump(raw, sort_keys=False))


@pytest.fixture
def dvc_project(tmp_path: Path) -> Callable[..., Path]:
    """A fresh git + DVC repository holding the project's dvc.yaml, a params.yaml with
    tiny training settings, the default dataset and its expectation suite."""

    def make(**overrides: dict[str, Any]) -> Path:
        return build_project(tmp_path / "project", {**FAST_PARAMS, **overrides})

    return make


def build_project(root: Path, sections: dict[str, dict[str, Any]]) -> Path:
    """A git + DVC repository holding the project's dvc.yaml, its params.yaml with
    ``sections`` laid over it, the default dataset and its expectation suite."""
    from flywheel.core.config import load_params
    from flywheel.core.layout import Layout
    from flywheel.datasets.digits import materialise_digits
    from flywheel.stages.validate.suite import save_suite

    root.mkdir(parents=True)
    shutil.copy(PROJECT / "dvc.yaml", root / "dvc.yaml")
    # Code deps point at the real source tree, outside this temp repo.
    sections = {
        **sections,
        "paths": {**sections.get("paths", {}), "code": str(PROJECT / "src" / "flywheel")},
    }
    write_params(root / "params.yaml", sections)
    init_repository(root, author="ci")
    materialise_digits(root / "data")
    params = load_params(root / "params.yaml")
    save_suite(params, Layout.from_params(params, root))
    return root


@pytest.fixture(scope="session")
def prefect_backend() -> Iterator[None]:
    """A real (temporary, SQLite) Prefect server for flows run in this process."""
    from prefect.testing.utilities import prefect_test_harness

    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture(scope="module")
def onnx_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two different exported networks and their preprocessing spec, built once per module."""
    import torch
    from tests.integration.serving_helpers import LABELS, SIZE

    from flywheel.families.image.network import ConvNet
    from flywheel.families.image.pixels import PreprocessingSpec
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


@pytest.fixture
def workspace(tmp_path: Path, raw_params: dict[str, Any], onnx_models: dict[str, Path]) -> Any:
    """The model server tests' root: its registry holds model "a" as v0001 in production."""
    from tests.integration.serving_helpers import card_fields, make_params

    from flywheel.core.layout import Layout
    from flywheel.release.registry import Registry

    params = make_params(raw_params, tmp_path)
    layout = Layout.from_params(params, tmp_path)
    registry = Registry(layout.registry)
    registry.register(onnx_models["a"], onnx_models["spec"], card_fields())
    registry.promote("v0001")
    return params, layout, registry
