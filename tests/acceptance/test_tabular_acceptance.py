"""California housing (../shared/datasets/housing, 20,640 rows) through the real flow, as
shipped in ``examples/tabular/params.yaml``, in a temporary DVC project.

Target of the issue, checked on the deployed variant: test R2 >= 0.75. The figures the
closing note reports (fp32 vs deployed R2, size and batch-1 latency ratios) are printed.
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

pytestmark = [pytest.mark.acceptance, pytest.mark.slow]

PROJECT = Path(__file__).resolve().parents[2]
DATASET = PROJECT.parent / "shared" / "datasets" / "housing"


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
    raw = yaml.safe_load((PROJECT / "examples" / "tabular" / "params.yaml").read_text())
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


def test_housing_meets_the_target(
    tmp_path: Path, prefect_backend: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not (DATASET / "housing.csv").is_file():
        pytest.skip(f"housing not found at {DATASET} (the shared datasets are not on this machine)")
    from flows.pipeline import pipeline

    from flywheel.inference import Predictor
    from flywheel.registry import Registry

    # Training threads only (evaluation pins its own): a 128-64 MLP gains nothing from a
    # second torch thread, and on a busy 2-core machine the two threads' handoffs cost more
    # than the work itself.
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    project = _project(tmp_path / "project")
    record = json.loads(
        pipeline(params_file=str(project / "params.yaml"), project=str(project))["record"]
    )
    assert record["deploy"]["status"] == "deployed", record
    evaluation = json.loads((project / "artifacts" / "metrics" / "evaluation.json").read_text())
    winner = evaluation["winner"]
    fp32 = evaluation["variants"]["fp32"]["metrics"]
    deployed = evaluation["variants"][winner]["metrics"]
    ratios = evaluation["ratios"]
    print(
        f"\nhousing: fp32 R2 {fp32['r2']:.4f} (RMSE {fp32['rmse']:.0f}), deployed {winner} "
        f"R2 {deployed['r2']:.4f} (RMSE {deployed['rmse']:.0f}), "
        f"size/fp32 {ratios['winner_size_vs_fp32']}, "
        f"p50/eager {ratios['winner_p50_vs_torch_eager']}, "
        f"p50/fp32 {ratios['winner_p50_vs_fp32']}"
    )
    assert deployed["r2"] >= 0.75
    assert ratios["winner_metric_drop"] <= 0.01

    predictor = Predictor.from_registry(Registry(project / "registry" / "tabular"))
    (pred,) = predictor.predict_instances(
        [
            {
                "longitude": -122.23,
                "latitude": 37.88,
                "housing_median_age": 41,
                "total_rooms": 880,
                "total_bedrooms": None,  # blank: imputed with the training median
                "population": 322,
                "households": 126,
                "median_income": 8.3252,
                "ocean_proximity": "NEAR BAY",
            }
        ]
    )
    assert 250_000 < pred.as_dict()["value"] < 600_000  # the file says 452,600
