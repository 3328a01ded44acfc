"""The real flow in a temporary DVC repository: deploy, idempotent rerun, bad data, refusal."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.integration.service_helpers import assert_dvc_status_clean, digit_image

from flywheel.core.errors import DataValidationError
from flywheel.datasets.png import encode_png
from flywheel.release.predictor import Predictor
from flywheel.release.registry import Registry

pytestmark = [pytest.mark.slow]


def _run_flow(project: Path, return_state: bool = False) -> Any:
    from flows.pipeline import pipeline

    run = pipeline(
        params_file=str(project / "params.yaml"), project=str(project), return_state=return_state
    )
    return run if return_state else json.loads(run["record"])


def test_deploy_rerun_and_bad_data(dvc_project, prefect_backend) -> None:
    project = dvc_project()
    registry = Registry(project / "registry")

    first = _run_flow(project)
    assert first["deploy"]["status"] == "deployed"
    assert all(s["ran"] for s in first["stages"].values())
    assert registry.production_version() == "v0001"
    card = registry.card("v0001")
    data_dvc = (project / "data.dvc").read_text()
    assert card.data_hash in data_dvc
    assert card.sha256 and card.params["seed"] == 42 and card.recipe["variant"] == card.variant
    assert (project / "dvc.lock").is_file()
    # Stages ran in the flow's process; DVC's own CLI must see exactly what `dvc repro` leaves.
    assert_dvc_status_clean(project)

    second = _run_flow(project)
    assert second["nothing_to_do"] is True
    assert not any(s["ran"] for s in second["stages"].values())
    assert registry.versions() == ["v0001"]

    sample = project / "data" / "3" / "0003.png"
    before = Predictor.from_registry(registry).predict_files([sample])

    # A corrupt PNG arrives: the run fails naming the expectation; production stays v1.
    (project / "data" / "3" / "corrupt.png").write_bytes(
        encode_png(__import__("numpy").zeros((8, 8), "uint8"))[:40]
    )
    with pytest.raises(DataValidationError) as err:
        _run_flow(project)
    assert "readable" in str(err.value)
    assert registry.production_version() == "v0001"
    assert registry.versions() == ["v0001"]
    quarantine = (project / "artifacts" / "validation" / "quarantine.csv").read_text()
    assert "3/corrupt.png" in quarantine
    assert Predictor.from_registry(registry).predict_files([sample]) == before
    assert card.data_hash in (project / "data.dvc").read_text()  # only validated data

    # Good new data, but a gate no candidate can pass: a normal outcome, not a crash.
    (project / "data" / "3" / "corrupt.png").unlink()
    for i in range(10):
        (project / "data" / "3" / f"new-{i}.png").write_bytes(digit_image(3, i))
    raw = yaml.safe_load((project / "params.yaml").read_text())
    raw["gate"]["min_accuracy"] = 0.9999
    (project / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    state = _run_flow(project, return_state=True)
    assert state.type.value == "COMPLETED" and state.name == "Refused", state
    refused = json.loads(state.result()["record"])
    assert refused["status"] == "refused"
    assert "no candidate passed the gate" in refused["deploy"]["reason"]
    trials = [t for t in refused["deploy"]["trials"] if t["result"]]
    assert trials and all(
        "min_accuracy" in [c["name"] for c in t["result"]["checks"] if not c["passed"]]
        for t in trials
    )
    assert registry.production_version() == "v0001" and registry.versions() == ["v0001"]


def test_cli_run_reports_nothing_to_do(dvc_project, tmp_path: Path) -> None:
    """`flywheel run` end to end as a user runs it (its own ephemeral Prefect server)."""
    project = dvc_project()
    env_home = tmp_path / "prefect-home"
    cmd = [sys.executable, "-m", "flywheel.cli", "run"]
    env = {**__import__("os").environ, "PREFECT_HOME": str(env_home)}
    first = subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "deployed" in first.stdout and "v0001" in first.stdout
    second = subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "nothing to do" in second.stdout

    models = subprocess.run(
        [sys.executable, "-m", "flywheel.cli", "models", "--json"],
        cwd=project,
        capture_output=True,
        text=True,
    )
    assert json.loads(models.stdout)["production"] == "v0001"
    predicted = subprocess.run(
        [sys.executable, "-m", "flywheel.cli", "predict", "--json", "data/7/0007.png"],
        cwd=project,
        capture_output=True,
        text=True,
    )
    assert predicted.returncode == 0, predicted.stderr
    assert json.loads(predicted.stdout)["predictions"][0]["label"] == "7"
