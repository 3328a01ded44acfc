"""California housing (../shared/datasets/housing, 20,640 rows) through the real flow, as
shipped in ``examples/tabular/params.yaml``, in a temporary DVC project.

Target of the issue, checked on the deployed variant: test R2 >= 0.75. The figures the
closing note reports (fp32 vs deployed R2, size and batch-1 latency ratios) are printed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.acceptance.conftest import PipelineRun

pytestmark = [
    pytest.mark.acceptance,
    pytest.mark.slow,
    pytest.mark.dataset("housing", "housing.csv"),
]


def test_housing_meets_the_target(
    dataset: Path,
    make_project: Callable[[str, Path | str], Path],
    run_pipeline: Callable[[Path], PipelineRun],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Training threads only (evaluation pins its own): a 128-64 MLP gains nothing from a
    # second torch thread, and on a busy 2-core machine the two threads' handoffs cost more
    # than the work itself.
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    # The data stays outside the temp project: hashed, not copied.
    run = run_pipeline(make_project("tabular", dataset))
    print(run.summary("housing", "r2", "rmse"))
    assert run.deployed["r2"] >= 0.75
    assert run.ratios["winner_metric_drop"] <= 0.01

    (pred,) = run.predictor().predict_instances(
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
