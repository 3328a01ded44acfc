"""AG news (../shared/datasets/news-ag, 7,600 rows) through the real flow, as shipped in
``examples/news/params.yaml``, in a temporary DVC project.

Targets of the issue, checked on the deployed variant: test accuracy >= 0.85, batch-1
latency <= 0.5x eager PyTorch, size <= 0.3x the fp32 ONNX model.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

PROJECT = Path(__file__).resolve().parents[2]
DATASET = PROJECT.parent / "shared" / "datasets" / "news-ag"

pytestmark = [
    pytest.mark.acceptance,
    pytest.mark.slow,
    pytest.mark.skipif(
        not (DATASET / "test.csv").is_file(),
        reason=f"AG news not found at {DATASET} (the shared datasets are not on this machine)",
    ),
]


@pytest.fixture(scope="module")
def prefect_backend() -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    with prefect_test_harness(server_startup_timeout=180):
        yield


def _project(root: Path) -> Path:
    from flywheel.config import load_params
    from flywheel.layout import Layout
    from flywheel.validation.suite import save_suite

    root.mkdir()
    shutil.copy(PROJECT / "dvc.yaml", root / "dvc.yaml")
    raw = yaml.safe_load((PROJECT / "examples" / "news" / "params.yaml").read_text())
    raw["data"]["path"] = str(DATASET)  # outside the temp project: hashed, not copied
    raw["paths"]["code"] = str(PROJECT / "src" / "flywheel")
    (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    for cmd in (
        ["git", "init", "-q"],
        ["git", "config", "user.email", "ci@example.com"],
        ["git", "config", "user.name", "ci"],
        [sys.executable, "-m", "dvc", "init", "-q"],
        [sys.executable, "-m", "dvc", "config", "core.analytics", "false"],
    ):
        subprocess.run(cmd, cwd=root, check=True, capture_output=True)
    params = load_params(root / "params.yaml")
    save_suite(params, Layout.from_params(params, root))
    return root


def test_news_ag_meets_the_targets(tmp_path: Path, prefect_backend: None) -> None:
    from flows.pipeline import pipeline

    from flywheel.inference import Predictor
    from flywheel.registry import Registry

    project = _project(tmp_path / "project")
    record = json.loads(
        pipeline(params_file=str(project / "params.yaml"), project=str(project))["record"]
    )
    assert record["deploy"]["status"] == "deployed", record
    evaluation = json.loads((project / "artifacts" / "metrics" / "evaluation.json").read_text())
    winner = evaluation["winner"]
    fp32 = evaluation["variants"]["fp32"]["metrics"]["accuracy"]
    deployed = evaluation["variants"][winner]["metrics"]["accuracy"]
    ratios = evaluation["ratios"]
    print(
        f"\nAG news: fp32 accuracy {fp32:.4f}, deployed {winner} {deployed:.4f}, "
        f"size/fp32 {ratios['winner_size_vs_fp32']}, "
        f"p50/eager {ratios['winner_p50_vs_torch_eager']}"
    )
    assert deployed >= 0.85
    assert ratios["winner_p50_vs_torch_eager"] <= 0.5
    assert ratios["winner_size_vs_fp32"] <= 0.3

    predictor = Predictor.from_registry(Registry(project / "registry" / "news"))
    (sports,) = predictor.predict_instances(
        [{"title": "Cup final", "text": "The striker scored twice as the champions won the cup."}]
    )
    assert sports.label == "2"
