"""Checks before a run starts, for the mistakes a newcomer makes first: data not where
``data.path`` says, no suite yet, no flywheel source where ``paths.code`` says. Each is one
line naming the fix, and costs milliseconds instead of a Prefect server start and a DVC
traceback."""

from __future__ import annotations

import os
from pathlib import Path

from flywheel.core.errors import ConfigError, DataNotFoundError
from flywheel.core.workspace import Workspace


def check(ws: Workspace) -> None:
    data = Path(os.path.normpath(ws.layout.data))
    shown = os.path.relpath(ws.params_file)
    if not data.exists():
        raise DataNotFoundError(
            f"dataset not found: {data} (data.path in {shown}); put the data there or set "
            "data.path to where it is"
        )
    suite = ws.params.validate_.suite
    path = Path(os.path.normpath(ws.layout.expectations / "gx" / "expectations" / f"{suite}.json"))
    if not path.is_file():
        raise ConfigError(
            f"expectation suite {suite!r} not found at {path}: run `flywheel init "
            f"{os.path.relpath(data, ws.project)}` (decides it from the data) or `flywheel "
            f"expectations init --params {shown}`"
        )
    code = ws.root / ws.params.paths.code
    if not code.is_dir():
        # DVC tracks the library's source as each stage's code; without it, every stage fails.
        import flywheel

        installed = Path(flywheel.__file__).parent
        raise ConfigError(
            f"paths.code: {os.path.normpath(code)} is not a folder (DVC tracks the flywheel "
            f"source there); set paths.code in {shown} to {installed}"
        )
    # An unreadable data.dvc is not checked here: the run moves it aside and records the
    # data anew (pipeline/dvcfiles.repair), as after a crash mid-write.
