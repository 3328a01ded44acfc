"""The gate down the ranking, and the post-promotion check's undo, on real files: tiny real
ONNX models, a real registry and journal."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper

from flywheel.core.errors import FlywheelError
from flywheel.core.faults import ENV
from flywheel.core.workspace import Workspace, open_workspace
from flywheel.release.gate import ModelMeasure
from flywheel.release.promotion import Promotion
from flywheel.release.registry import Registry
from flywheel.release.trials import CHOSEN, NOT_NEEDED, judge

PROJECT = Path(__file__).resolve().parents[3]
CLASSES = 10  # the project's params: the ten digits


def _model(path: Path, op: str = "Identity") -> Path:
    inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", CLASSES])
    out = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", CLASSES])
    graph = helper.make_graph([helper.make_node(op, ["input"], ["logits"])], "g", [inp], [out])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model.SerializeToString())
    return path


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    shutil.copy(PROJECT / "params.yaml", tmp_path / "params.yaml")
    return open_workspace(tmp_path / "params.yaml", tmp_path)


def test_the_best_ranked_candidate_that_passes_the_gate_and_the_probe_is_chosen(
    ws: Workspace,
) -> None:
    layout = ws.layout
    for name, op in (
        ("big", "Identity"),
        ("nan", "Log"),
        ("small", "Identity"),
        ("fp32", "Identity"),
    ):
        _model(layout.variant_file(name), op)
    production = ModelMeasure(0.97, 1.0, 16_000, "v0001")
    measures = {
        "big": ModelMeasure(0.99, 1.0, 55_000),  # 3.4x production's size: refused
        "nan": ModelMeasure(0.99, 1.0, 16_000),  # passes the gate, answers NaN: refused
        "small": ModelMeasure(0.99, 1.0, 16_000),
        "fp32": ModelMeasure(0.99, 1.0, 16_000),
    }
    ranked = [(n, f"sha-{n}", None) for n in measures]
    x_probe = -np.ones((2, CLASSES), dtype=np.float32)
    trials = judge(ws, ranked, production, measures, x_probe)
    verdicts = {t.variant: t.verdict for t in trials}
    assert verdicts["big"].startswith("refused: size 3.44x production's")
    assert verdicts["nan"].startswith("refused: probe output contains NaN")
    assert verdicts["small"] == CHOSEN
    assert verdicts["fp32"] == NOT_NEEDED
    assert [t.passed for t in trials] == [False, False, True, True]


def _registered(registry: Registry, tmp_path: Path, tag: str) -> str:
    model = _model(tmp_path / f"{tag}.onnx")
    model.write_bytes(model.read_bytes() + tag.encode())  # a distinct sha256 per version
    spec = tmp_path / "spec.json"
    spec.write_text("{}")
    fields = {
        "task": "image_classification",
        "labels": tuple(str(i) for i in range(CLASSES)),
        "data_hash": "d.dir",
        "params_hash": "p",
        "code_version": "test",
        "variant": "fp32",
        "recipe": {},
        "metrics": {"accuracy": 0.9},
        "params": {},
        "evaluation": {},
    }
    return registry.register(model, spec, fields).version


def test_a_first_deploy_that_fails_its_post_check_leaves_no_production(
    ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = Registry(ws.layout.registry)
    v1 = _registered(registry, tmp_path, "one")
    registry.promote(v1)
    monkeypatch.setenv(ENV, "deploy.post_check:raise")
    with pytest.raises(FlywheelError, match=r"v0001 failed its post-promotion check.*is none"):
        Promotion(ws, registry).post_check(v1, np.zeros((2, CLASSES), np.float32))
    assert registry.production_version() is None
    assert registry.status(v1) == "retired"


def test_a_failed_post_check_moves_production_back_to_the_previous_version(
    ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = Registry(ws.layout.registry)
    v1 = _registered(registry, tmp_path, "one")
    registry.promote(v1)
    registry.mark_verified(v1)
    v2 = _registered(registry, tmp_path, "two")
    registry.promote(v2)
    monkeypatch.setenv(ENV, "deploy.post_check:raise")
    with pytest.raises(FlywheelError, match="production is v0001 again"):
        Promotion(ws, registry).post_check(v2, np.zeros((2, CLASSES), np.float32))
    assert registry.production_version() == v1
    assert registry.last_good() is not None and registry.last_good().version == v1  # type: ignore[union-attr]
