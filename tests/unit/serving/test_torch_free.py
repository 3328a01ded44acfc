"""Processes that never train must not pay for torch: the model server (through loading,
probing and answering requests), the flow's own process and the CLI's quick paths."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from tests.served_models import TASKS, registry_with

PROJECT = Path(__file__).resolve().parents[3]


def test_serving_and_orchestration_modules_do_not_import_torch() -> None:
    code = (
        "import sys\n"
        "import flows.pipeline, flywheel.pipeline.steps, flywheel.serving.app\n"
        "import flywheel.release.predictor, flywheel.release.deploy\n"
        "from flywheel.families import get_family\n"
        f"families = [get_family(t) for t in {TASKS!r}]\n"
        "print(sorted(m for m in ('torch', 'lightning') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


_SERVE = """
import json, sys
from pathlib import Path
from fastapi.testclient import TestClient
from flywheel.core.config import parse_params
from flywheel.core.layout import Layout
from flywheel.serving.app import create_app

root = Path(sys.argv[1])
raw, instance = json.loads(Path(sys.argv[2]).read_text())
params = parse_params({**raw, "paths": {"registry": str(root / "registry")},
                       "data": {**raw.get("data", {}), "path": str(root / "data"),
                                "feedback_inbox": str(root / "inbox")}})
with TestClient(create_app(params, Layout.from_params(params, root))) as client:
    ready = client.get("/readyz")
    answer = client.post("/v1/predict", json={"instances": [instance]})
print(json.dumps({"ready": ready.status_code, "status": answer.status_code,
                  "body": answer.json(),
                  "torch": sorted(m for m in ("torch", "lightning") if m in sys.modules)}))
"""


@pytest.mark.parametrize("task", TASKS)
def test_the_server_loads_probes_and_answers_without_torch(task: str, tmp_path: Path) -> None:
    raw, instance = registry_with(task, tmp_path)
    request = tmp_path / "request.json"
    request.write_text(json.dumps([raw, instance]))
    out = subprocess.run(
        [sys.executable, "-c", _SERVE, str(tmp_path), str(request)],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["ready"] == 200 and result["status"] == 200, result
    assert len(result["body"]["predictions"]) == 1
    assert result["torch"] == [], "the server imported torch"
