"""Processes that never train must not pay for torch: the model server, the flow's own
process and the CLI's quick paths load families to encode inputs and read specs only."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

TASKS = ("image_classification", "text_classification", "sentiment", "tabular_regression")


def test_serving_and_orchestration_do_not_import_torch(project_root: Path) -> None:
    code = (
        "import sys\n"
        "import flows.pipeline, flywheel.orchestration, flywheel.serving.app, flywheel.inference\n"
        "from flywheel.families import get_family\n"
        f"families = [get_family(t) for t in {TASKS!r}]\n"
        "print(sorted(m for m in ('torch', 'lightning') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=project_root, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
