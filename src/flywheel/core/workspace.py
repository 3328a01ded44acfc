"""A workspace is a folder holding ``dvc.yaml`` and ``params.resolved.yaml``: one pipeline.

The user writes a params file with only what differs from its task's defaults; opening the
workspace resolves it (defaults filled in, see :mod:`flywheel.core.config`) and writes the
result to ``params.resolved.yaml`` under the key ``resolved``, which is what ``dvc.yaml``
templates its paths from and tracks params in. The project root is the default workspace
(its ``params.yaml``). ``flywheel run --params other.yaml`` gets its own workspace under
``.flywheel/workspaces/`` with the project's ``dvc.yaml`` and resolved params whose shared
paths (data, registry, expectations, code) are re-pointed at the project, so several
datasets run side by side from one checkout without editing any file.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from flywheel.core.atomic import atomic_write_text
from flywheel.core.config import Params, load_params, read_yaml
from flywheel.core.errors import ConfigError
from flywheel.core.layout import RESOLVED_KEY, Layout
from flywheel.core.sections import DataConfig, PathsConfig

# Keys whose relative paths name project-level things; artifacts stay per workspace.
_SHARED_PATH_KEYS = (
    ("data", "path"),
    ("data", "feedback_inbox"),
    ("paths", "registry"),
    ("paths", "expectations"),
    ("paths", "code"),
)
_HEADER = (
    "# Written by flywheel from {source}: its params with every default filled in, as DVC\n"
    "# tracks them and model cards record them. Do not edit; edit {source} instead.\n"
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
    """The nearest folder at or above ``start`` holding ``dvc.yaml`` and a ``.dvc`` folder
    (workspaces under ``.flywheel/`` hold a ``dvc.yaml`` but belong to the project above)."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "dvc.yaml").is_file() and (folder / ".dvc").is_dir():
            return folder
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
        atomic_write_text(path, text)


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


def resolved_text(params: Params, source: str) -> str:
    """The ``params.resolved.yaml`` for ``params`` resolved from the file ``source``."""
    body = yaml.safe_dump({"source": source, RESOLVED_KEY: params.as_dict()}, sort_keys=False)
    return _HEADER.format(source=source) + body


def _params_path(params_file: Path | str | None, project: Path) -> Path:
    path = Path(params_file) if params_file else project / "params.yaml"
    return path if path.is_absolute() else (Path.cwd() / path).resolve()


def open_workspace(params_file: Path | str | None = None, project: Path | None = None) -> Workspace:
    """Resolve ``params_file`` (default: the project's ``params.yaml``) and write the
    workspace's ``params.resolved.yaml`` (and, for other files, its ``dvc.yaml``)."""
    project = (project or find_project()).resolve()
    params_file = _params_path(params_file, project)
    user = load_params(params_file)
    if params_file == project / "params.yaml":
        root, resolved = project, user
    else:
        try:
            rel = params_file.relative_to(project)
        except ValueError:
            rel = Path(params_file.name)
        root = project / ".flywheel" / "workspaces" / _slug(rel)
        root.mkdir(parents=True, exist_ok=True)
        resolved = Params.model_validate(_repoint(user.as_dict(), project, root))
        _write_if_changed(root / "dvc.yaml", (project / "dvc.yaml").read_text())
    source = os.path.relpath(params_file, root)
    _write_if_changed(
        Layout.from_params(resolved, root).resolved_params, resolved_text(resolved, source)
    )
    return Workspace(root, project, params_file, resolved)


def workspace_at(root: Path) -> Workspace:
    """The workspace whose ``params.resolved.yaml`` sits in ``root`` (where DVC runs a
    stage's command). Fails when its source params file changed since it was written:
    DVC would otherwise run the stage with params it did not track."""
    root = root.resolve()
    path = root / Layout.resolved_name()
    raw = read_yaml(path)
    if not isinstance(raw, dict) or RESOLVED_KEY not in raw or "source" not in raw:
        raise ConfigError(f"{path} is not a resolved params file; run `flywheel run`")
    params_file = (root / str(raw["source"])).resolve()
    project = find_project(root)
    current = open_workspace(params_file, project)
    if current.params != Params.model_validate(raw[RESOLVED_KEY]):
        raise ConfigError(
            f"{params_file} changed after DVC read {path}; the file is updated now: run "
            "`dvc repro` again (or `flywheel run`) so DVC tracks the new values"
        )
    return current
