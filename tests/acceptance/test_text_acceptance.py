"""AG news (../shared/datasets/news-ag, 7,600 rows) through the real flow, as shipped in
``examples/news/params.yaml``, in a temporary DVC project.

Targets of the issue, checked on the deployed variant: test accuracy >= 0.85, batch-1
latency <= 0.5x eager PyTorch, size <= 0.3x the fp32 ONNX model.
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
    pytest.mark.dataset("news-ag", "test.csv"),
]


def test_news_ag_meets_the_targets(
    dataset: Path,
    make_project: Callable[[str, Path | str], Path],
    run_pipeline: Callable[[Path], PipelineRun],
) -> None:
    # The data stays outside the temp project: hashed, not copied.
    run = run_pipeline(make_project("news", dataset))
    print(run.summary("AG news", "accuracy"))
    assert run.deployed["accuracy"] >= 0.85
    assert run.ratios["winner_p50_vs_torch_eager"] <= 0.5
    assert run.ratios["winner_size_vs_fp32"] <= 0.3

    (sports,) = run.predictor().predict_instances(
        [{"title": "Cup final", "text": "The striker scored twice as the champions won the cup."}]
    )
    assert sports.label == "2"
