"""dvc.yaml and flywheel.layout spell the same paths; this keeps them from drifting apart."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from flywheel.config import load_params
from flywheel.dvc_ops import STAGES
from flywheel.layout import Layout
from flywheel.stages import STAGE_FUNCTIONS


def _render(value: Any, params: dict[str, Any]) -> Any:
    def lookup(match: re.Match[str]) -> str:
        node: Any = params
        for part in match.group(1).split("."):
            node = node[part]
        return str(node)

    if isinstance(value, str):
        return re.sub(r"\$\{([^}]+)\}", lookup, value)
    if isinstance(value, list):
        return [_render(v, params) for v in value]
    if isinstance(value, dict):
        return {_render(k, params): _render(v, params) for k, v in value.items()}
    return value


def _paths(entries: list[Any]) -> set[str]:
    return {next(iter(e)) if isinstance(e, dict) else e for e in entries}


def test_stages_match_layout(project_root: Path) -> None:
    raw = yaml.safe_load((project_root / "params.yaml").read_text())
    dvc = _render(yaml.safe_load((project_root / "dvc.yaml").read_text()), raw)["stages"]
    layout = Layout.from_params(load_params(project_root / "params.yaml"), Path())
    rel = lambda p: p.as_posix()  # noqa: E731

    assert tuple(dvc) == STAGES == tuple(STAGE_FUNCTIONS)
    for name, stage in dvc.items():
        assert stage["cmd"] == f"flywheel stage {name}"
        for dep in stage.get("deps", []):
            if dep.startswith(raw["paths"]["code"]) or dep == raw["data"]["path"]:
                continue
            produced = set().union(*(_paths(s.get("outs", [])) for s in dvc.values()))
            assert dep in produced or dep.startswith(raw["paths"]["expectations"]), dep

    outs = {
        n: _paths(s.get("outs", [])) | _paths(s.get("metrics", [])) | _paths(s.get("plots", []))
        for n, s in dvc.items()
    }
    assert rel(layout.validation_dir / "manifest.csv") in outs["validate"]
    assert rel(layout.preprocessed_dir) in outs["preprocess"]
    assert {rel(layout.model_dir), rel(layout.train_metrics), rel(layout.train_curve)} <= outs[
        "train"
    ]
    assert rel(layout.variant_file("fp32").parent) in outs["export"]
    assert rel(layout.export_report.parent) in outs["export"]
    assert rel(layout.variant_file("int8").parent) in outs["compress"]
    assert rel(layout.recipe_file("int8").parent) in outs["compress"]
    assert rel(layout.evaluation_report) in outs["evaluate"]


def test_code_deps_exist(project_root: Path) -> None:
    raw = yaml.safe_load((project_root / "params.yaml").read_text())
    dvc = _render(yaml.safe_load((project_root / "dvc.yaml").read_text()), raw)["stages"]
    for stage in dvc.values():
        for dep in stage["deps"]:
            if dep.startswith(raw["paths"]["code"]):
                assert (project_root / dep).exists(), dep


def test_every_listed_param_is_spelled_out_in_params_yaml(project_root: Path) -> None:
    """DVC reads stage params from the file, not from our defaults: a key dvc.yaml lists
    must be written in the root params.yaml, or `dvc repro` stops with MissingParamsError.
    (Other params files run in workspaces that write every key out in full.)"""
    raw = yaml.safe_load((project_root / "params.yaml").read_text())
    dvc = yaml.safe_load((project_root / "dvc.yaml").read_text())["stages"]
    for name, stage in dvc.items():
        for key in stage.get("params", []):
            node: Any = raw
            for part in str(key).split("."):
                assert isinstance(node, dict) and part in node, f"{name}: {key}"
                node = node[part]
