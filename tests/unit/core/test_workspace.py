from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from flywheel.core.errors import ConfigError
from flywheel.core.workspace import find_project, open_workspace, workspace_at


@pytest.fixture
def project(tmp_path: Path, project_root: Path) -> Path:
    (tmp_path / "dvc.yaml").write_text((project_root / "dvc.yaml").read_text())
    (tmp_path / "params.yaml").write_text((project_root / "params.yaml").read_text())
    return tmp_path


def test_root_params_use_the_project_as_workspace(project: Path) -> None:
    ws = open_workspace(None, project)
    assert ws.root == project.resolve()
    assert ws.name == "default"
    assert ws.layout.data == project.resolve() / "data"


def test_other_params_get_their_own_workspace(project: Path, raw_params: dict) -> None:
    raw_params["data"]["path"] = "datasets/other"
    raw_params["paths"]["registry"] = "registry/other"
    other = project / "configs" / "other.yaml"
    other.parent.mkdir()
    other.write_text(yaml.safe_dump(raw_params))
    ws = open_workspace(other, project)
    assert ws.root.parent == project.resolve() / ".flywheel" / "workspaces"
    # Shared paths point back into the project; artifacts stay inside the workspace.
    assert ws.layout.data.resolve() == project.resolve() / "datasets" / "other"
    assert ws.layout.registry.resolve() == project.resolve() / "registry" / "other"
    assert ws.layout.artifacts.resolve() == ws.root / "artifacts"
    assert (ws.root / "dvc.yaml").read_text() == (project / "dvc.yaml").read_text()
    resolved = yaml.safe_load((ws.root / "params.resolved.yaml").read_text())
    assert resolved["source"] == os.path.relpath(other, ws.root)
    assert resolved["resolved"]["data"]["path"] == os.path.relpath(
        project / "datasets" / "other", ws.root
    )
    mtime = os.stat(ws.root / "params.resolved.yaml").st_mtime_ns
    open_workspace(other, project)
    # Unchanged files are left alone (editors and watchers look at mtimes).
    assert os.stat(ws.root / "params.resolved.yaml").st_mtime_ns == mtime


def test_a_user_file_holds_only_what_differs_from_the_task_defaults(project: Path) -> None:
    minimal = project / "tiny.yaml"
    minimal.write_text("task: tabular_regression\nvalidate: {suite: t, labels: []}\n")
    ws = open_workspace(minimal, project)
    # The family's defaults fill in the rest: a table, the r2 gate, an MLP.
    assert ws.params.data.kind == "table"
    assert ws.params.gate.metric == "r2" and ws.params.gate.min_accuracy is None
    assert ws.params.model.hidden == (128, 64)
    resolved = yaml.safe_load((ws.root / "params.resolved.yaml").read_text())["resolved"]
    assert resolved["gate"]["metric"] == "r2" and resolved["image"]["size"] == 8


def test_a_stage_run_by_dvc_refuses_params_changed_behind_its_back(project: Path) -> None:
    ws = open_workspace(None, project)
    assert workspace_at(ws.root).params == ws.params
    text = (project / "params.yaml").read_text().replace("min_accuracy: 0.95", "min_accuracy: 0.9")
    (project / "params.yaml").write_text(text)
    with pytest.raises(ConfigError, match="changed after DVC read"):
        workspace_at(ws.root)
    # The refusal refreshed the resolved file: the next `dvc repro` sees the new value.
    assert workspace_at(ws.root).params.gate.min_accuracy == 0.9


def test_bad_other_params_fail_before_creating_anything(project: Path, raw_params: dict) -> None:
    raw_params["train"]["lr"] = "fast"
    bad = project / "bad.yaml"
    bad.write_text(yaml.safe_dump(raw_params))
    with pytest.raises(ConfigError, match=r"train\.lr"):
        open_workspace(bad, project)
    assert not (project / ".flywheel").exists()


def test_find_project_walks_up(project: Path) -> None:
    nested = project / "a" / "b"
    nested.mkdir(parents=True)
    assert find_project(nested) == project.resolve()
    with pytest.raises(ConfigError, match=r"no dvc\.yaml"):
        find_project(Path("/"))
