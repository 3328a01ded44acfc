"""dvc.yaml, the stage table and flywheel.core.layout spell the same stages and paths;
params.resolved.yaml is what params.yaml resolves to, and holds every key dvc.yaml lists."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import yaml

from flywheel import stages
from flywheel.core.config import load_params
from flywheel.core.layout import RESOLVED_KEY, Layout
from flywheel.core.workspace import resolved_text

PROJECT = Path(__file__).resolve().parents[3]
_spec = importlib.util.spec_from_file_location(
    "code_deps", Path(__file__).with_name("test_code_deps.py")
)
assert _spec and _spec.loader
code_deps = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(code_deps)


def _rendered() -> dict[str, Any]:
    variables = yaml.safe_load((PROJECT / "params.resolved.yaml").read_text())
    raw = yaml.safe_load((PROJECT / "dvc.yaml").read_text())["stages"]
    return dict(code_deps._render(raw, variables))


def _paths(entries: list[Any]) -> set[str]:
    return {next(iter(e)) if isinstance(e, dict) else e for e in entries}


def test_committed_resolved_params_are_what_params_yaml_resolves_to() -> None:
    """Edit params.yaml, then run any flywheel command (or `flywheel params`) to refresh it."""
    params = load_params(PROJECT / "params.yaml")
    assert (PROJECT / "params.resolved.yaml").read_text() == resolved_text(params, "params.yaml")


def test_stages_match_the_stage_table_and_the_layout() -> None:
    dvc = _rendered()
    resolved = yaml.safe_load((PROJECT / "params.resolved.yaml").read_text())[RESOLVED_KEY]
    layout = Layout.from_params(load_params(PROJECT / "params.yaml"), Path())
    assert tuple(dvc) == stages.NAMES
    produced = set().union(*(_paths(s.get("outs", [])) for s in dvc.values()))
    for name, stage in dvc.items():
        assert stage["cmd"] == f"flywheel stage {name}"
        for dep in stage.get("deps", []):
            if dep.startswith(resolved["paths"]["code"]) or dep == resolved["data"]["path"]:
                continue
            assert dep in produced or dep.startswith(resolved["paths"]["expectations"]), dep
    outs = {
        n: _paths(s.get("outs", [])) | _paths(s.get("metrics", [])) | _paths(s.get("plots", []))
        for n, s in dvc.items()
    }
    rel = Path.as_posix
    assert {rel(layout.accepted_manifest), rel(layout.quarantine)} <= outs["validate"]
    assert rel(layout.validation_report) in outs["validate"]
    assert rel(layout.preprocessed_dir) in outs["preprocess"]
    train = {rel(layout.model_dir), rel(layout.train_metrics), rel(layout.train_curve)}
    assert train <= outs["train"]
    assert rel(layout.variant_file("fp32").parent) in outs["export"]
    assert rel(layout.export_report.parent) in outs["export"]
    assert rel(layout.variant_file("int8").parent) in outs["compress"]
    assert rel(layout.recipe_file("int8").parent) in outs["compress"]
    assert rel(layout.evaluation_report) in outs["evaluate"]


def test_code_deps_exist() -> None:
    for stage in _rendered().values():
        for dep in stage["deps"]:
            if dep.startswith("src/"):
                assert (PROJECT / dep).exists(), dep


def test_every_listed_param_is_in_the_resolved_file() -> None:
    """DVC reads stage params from the file: a key dvc.yaml lists must be in it, or
    `dvc repro` stops with MissingParamsError."""
    resolved = yaml.safe_load((PROJECT / "params.resolved.yaml").read_text())
    raw = yaml.safe_load((PROJECT / "dvc.yaml").read_text())["stages"]
    for name, stage in raw.items():
        for entry in stage.get("params", []):
            ((file, keys),) = entry.items()
            assert file == "params.resolved.yaml", name
            for key in keys:
                node: Any = resolved
                for part in str(key).split("."):
                    assert isinstance(node, dict) and part in node, f"{name}: {key}"
                    node = node[part]
