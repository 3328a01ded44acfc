"""The families the inference benchmark measures: the default params and every example
folder's, why one cannot run here, and its workspace brought up to date through DVC."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import (
    PROJECT,
)

STAGE_RETRIES = 30  # another engineer's DVC run may hold the repository lock
STAGE_RETRY_WAIT_S = 10.0


@dataclass(frozen=True)
class Entry:
    name: str
    params_file: Path


def discover(project: Path = PROJECT) -> list[Entry]:
    """The default params, then every example folder's params, in name order."""
    entries = [Entry("default", project / "params.yaml")]
    entries += [
        Entry(p.parent.name, p) for p in sorted((project / "examples").glob("*/params.yaml"))
    ]
    return entries


def unavailable(entry: Entry, project: Path = PROJECT) -> str | None:
    """Why ``entry`` cannot run here (family module, dataset or suite missing), or None."""
    from flywheel.core.config import load_params
    from flywheel.core.errors import ConfigError
    from flywheel.families import get_family
    from flywheel.stages.validate.suite import suite_path

    try:
        params = load_params(entry.params_file)
    except ConfigError as err:
        return f"params do not load: {err}"
    try:
        get_family(params.task)
    except ImportError as err:
        return f"family {params.task!r} is not available: {err}"
    data = params.data.path if params.data.path.is_absolute() else project / params.data.path
    if not data.exists():
        return f"dataset {data} is absent"
    from flywheel.core.layout import Layout

    suite = suite_path(Layout.from_params(params, project), params.validate_.suite)
    if not suite.is_file():
        return f"suite {suite.name} not generated (flywheel expectations init --params ...)"
    return None


def bring_up_to_date(entry: Entry) -> tuple[Any, dict[str, Any]]:
    """The family's workspace with every stage reproduced (or cached) through DVC."""
    from flywheel.core.workspace import open_workspace
    from flywheel.pipeline import dvc, steps
    from flywheel.stages import NAMES

    ws = open_workspace(entry.params_file, PROJECT)
    stages: dict[str, Any] = {}
    for stage in NAMES:
        for attempt in range(STAGE_RETRIES):
            try:
                run = steps.reproduce(ws, stage)
                break
            except dvc.DvcBusy:
                # Someone else's run of the same workspace holds DVC's repository lock or an
                # output's read/write lock: wait for it. Any other failure is real.
                if attempt == STAGE_RETRIES - 1:
                    raise
                time.sleep(STAGE_RETRY_WAIT_S)
        stages[stage] = {"ran": run.ran, "seconds": run.seconds}
        print(f"  {entry.name}: {stage} {'ran' if run.ran else 'cached'} {run.seconds}s")
    return ws, stages
