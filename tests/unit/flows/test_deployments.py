"""The retrain deployment listens for drift only when asked; the monitor runs on its cron."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from flywheel.core.workspace import open_workspace
from flywheel.triggers.events import DATA_CHANGED, DRIFT_DETECTED


def _ws(tmp_path: Path, monitor: dict[str, Any]) -> Any:
    raw = {"validate": {"labels": ["a", "b"]}, "monitor": monitor}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    return open_workspace(tmp_path / "params.yaml", tmp_path)


@pytest.mark.parametrize("on", [False, True])
def test_drift_starts_a_retrain_only_with_retrain_on_drift(tmp_path: Path, on: bool) -> None:
    from flows.retrain import build

    deployment = build(_ws(tmp_path, {"retrain_on_drift": on}))
    expected = [{DATA_CHANGED}, {DRIFT_DETECTED}] if on else [{DATA_CHANGED}]
    assert [set(t.expect) for t in deployment.triggers] == expected


def test_the_monitor_deployment_runs_on_monitor_cron(tmp_path: Path) -> None:
    from flows.monitor import build

    deployment = build(_ws(tmp_path, {"cron": "*/15 * * * *"}))
    assert [s.schedule.cron for s in deployment.schedules] == ["*/15 * * * *"]
    assert deployment.name.startswith("monitor-")
    assert build(_ws(tmp_path, {})).schedules == []


def test_team_mode_puts_the_monitor_on_the_pool_beside_retrain(tmp_path: Path) -> None:
    from flows.monitor import build as served_monitor
    from flows.pool import pool_deployments
    from flows.retrain import build as served_retrain

    # A worker loads both flows from its checkout, which this project stands in for.
    (tmp_path / "flows").symlink_to(Path(__file__).resolve().parents[3] / "flows")
    ws = _ws(tmp_path, {"cron": "*/15 * * * *", "retrain_on_drift": True})
    retrain, monitor = pool_deployments(ws)
    served = {d.name: d for d in (served_retrain(ws), served_monitor(ws))}
    assert [retrain.name, monitor.name] == list(served)
    assert monitor.entrypoint == "flows/monitor.py:monitor"
    assert retrain.entrypoint == "flows/pipeline.py:pipeline"
    assert [s.schedule.cron for s in monitor.schedules] == ["*/15 * * * *"]
    assert [set(t.expect) for t in retrain.triggers] == [{DATA_CHANGED}, {DRIFT_DETECTED}]
    for deployment in (retrain, monitor):
        assert deployment.tags == served[deployment.name].tags
        # Relative to whichever checkout the worker cds into, never this machine's path.
        assert deployment.parameters["params_file"] == "params.yaml"
        assert "project" not in deployment.parameters
        assert deployment.storage is not None
        pull = deployment.storage.to_pull_step()
        assert pull["prefect.deployments.steps.set_working_directory"] == {
            "directory": "{{ $FLYWHEEL_CHECKOUT }}"
        }
