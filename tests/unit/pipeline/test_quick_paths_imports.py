"""The answer to an unchanged ``flywheel run`` comes before any table is read: resolving the
params file (which loads the task's family for its defaults) and the steps that check DVC
and the registry must not import pandas, whose import alone is a quarter of that answer."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[3]


def test_resolving_params_and_the_run_steps_do_not_import_pandas() -> None:
    code = (
        "import sys\n"
        "from flywheel.core.workspace import open_workspace\n"
        "import flywheel.pipeline.steps, flywheel.release.deploy\n"
        "ws = open_workspace('params.yaml')\n"
        "print(ws.params.task, 'pandas' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["image_classification", "False"], out.stdout + out.stderr
