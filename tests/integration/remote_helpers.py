"""Two "machines" for the team-mode tests: each its own git clone in its own folder, its
own empty DVC cache and registry mirror, sharing nothing but the S3 bucket."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from tests.integration.conftest import FAST_PARAMS, build_project

from flywheel.core.remote_section import RemoteConfig


def remote_section(config: RemoteConfig) -> dict[str, Any]:
    return config.model_dump(mode="json")


def origin_and_clone(tmp_path: Path, config: RemoteConfig) -> tuple[Path, Path]:
    """Machine A (the project as built, with the data) and machine B, a ``git clone`` of
    it made before A runs: B has the code and params but no data and an empty cache."""
    a = build_project(tmp_path / "a", {**FAST_PARAMS, "remote": remote_section(config)})
    git = ["git", "-c", "user.email=ci@localhost", "-c", "user.name=ci"]
    subprocess.run(["git", "add", "dvc.yaml", "params.yaml", "expectations"], cwd=a, check=True)
    subprocess.run([*git, "commit", "-qm", "project"], cwd=a, check=True)
    b = tmp_path / "b"
    subprocess.run(["git", "clone", "-q", str(a), str(b)], check=True)
    assert not (b / "data").exists() and not (b / ".dvc" / "cache").exists()
    return a, b


def run_flow(project: Path, data_hash: str | None = None) -> dict[str, Any]:
    from flows.pipeline import pipeline

    out = pipeline(
        params_file=str(project / "params.yaml"), project=str(project), data_hash=data_hash
    )
    return dict(json.loads(out["record"]))
