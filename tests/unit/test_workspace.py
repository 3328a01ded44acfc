from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from flywheel.errors import ConfigError
from flywheel.workspace import find_project, open_workspace


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
    mtime = os.stat(ws.root / "params.yaml").st_mtime_ns
    open_workspace(other, project)
    assert os.stat(ws.root / "params.yaml").st_mtime_ns == mtime  # unchanged files are left alone


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
