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
