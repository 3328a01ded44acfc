"""A workspace is a folder holding ``dvc.yaml`` and ``params.yaml``: one pipeline instance.

The project root is the default workspace. ``flywheel run --params other.yaml`` gets its own
workspace under ``.flywheel/workspaces/`` with the project's ``dvc.yaml`` and a copy of the
params whose shared paths (data, registry, expectations, code) are re-pointed at the project,
so several datasets run side by side from one checkout without editing any file.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from flywheel.config import DataConfig, Params, PathsConfig, load_params, parse_params
from flywheel.errors import ConfigError
from flywheel.layout import Layout

# Keys whose relative paths name project-level things; artifacts stay per workspace.
_SHARED_PATH_KEYS = (
    ("data", "path"),
    ("data", "feedback_inbox"),
    ("paths", "registry"),
    ("paths", "expectations"),
    ("paths", "code"),
)


@dataclass(frozen=True)
class Workspace:
    root: Path
    project: Path
    params_file: Path
    params: Params

    @property
    def layout(self) -> Layout:
        return Layout.from_params(self.params, self.root)

    @property
    def name(self) -> str:
        return "default" if self.root == self.project else self.root.name


def find_project(start: Path | None = None) -> Path:
    """The nearest folder at or above ``start`` holding ``dvc.yaml``."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "dvc.yaml").is_file():
            return folder
    raise ConfigError(f"no dvc.yaml found at or above {here}: run flywheel from a project folder")


def _slug(path: Path) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", path.with_suffix("").as_posix()).strip("-") or "params"


def _write_if_changed(path: Path, text: str) -> None:
    # Rewriting identical bytes would still bump mtimes; DVC hashes content, but editors
    # and watchers do not, so leave unchanged files alone.
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)


def _repoint(raw: dict[str, Any], project: Path, workspace: Path) -> dict[str, Any]:
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in raw.items()}
    for section, key in _SHARED_PATH_KEYS:
        block = out.setdefault(section, {})
        defaults = DataConfig() if section == "data" else PathsConfig()
        value = Path(block.get(key, getattr(defaults, key)))
        if value.is_absolute():
            continue
        block[key] = os.path.relpath(project / value, workspace)
    return out


def open_workspace(params_file: Path | str | None = None, project: Path | None = None) -> Workspace:
    project = (project or find_project()).resolve()
    params_file = Path(params_file) if params_file else project / "params.yaml"
    if not params_file.is_absolute():
        params_file = (Path.cwd() / params_file).resolve()
    if params_file == project / "params.yaml":
        return Workspace(project, project, params_file, load_params(params_file))
    if not params_file.is_file():
        raise ConfigError(f"params file not found: {params_file}")
    try:
        raw = yaml.safe_load(params_file.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{params_file} is not valid YAML: {err}") from None
    # Fail on bad values before creating anything; then write every section with its
    # defaults filled in, because DVC reads params by key straight from the YAML file.
    raw = parse_params(raw, str(params_file)).as_dict()
    try:
        rel = params_file.relative_to(project)
    except ValueError:
        rel = Path(params_file.name)
    root = project / ".flywheel" / "workspaces" / _slug(rel)
    root.mkdir(parents=True, exist_ok=True)
    repointed = _repoint(raw, project, root)
    _write_if_changed(root / "params.yaml", yaml.safe_dump(repointed, sort_keys=False))
    _write_if_changed(root / "dvc.yaml", (project / "dvc.yaml").read_text())
    return Workspace(root, project, params_file, load_params(root / "params.yaml"))
