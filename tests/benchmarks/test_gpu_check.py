"""The GPU check runs on a machine without a GPU: the pipeline part on the CPU, every GPU
part skipped with its reason, and both reports written (so the one device run cannot fail
on a path nobody exercised)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from benchmarks.gpu_check.__main__ import main


@pytest.mark.slow
def test_gpu_check_runs_on_the_cpu_and_says_what_it_skipped(tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is here: the device run covers this machine")
    assert main(["--out", str(tmp_path), "--quick"]) == 0
    results = json.loads((tmp_path / "gpu_check.json").read_text())
    pipeline = results["pipeline"]
    assert pipeline["accelerator"] == "cpu" and pipeline["precision"] == "32-true"
    assert set(pipeline["stage_seconds"]) == {
        "preprocess",
        "train",
        "export",
        "compress",
        "evaluate",
    }
    assert abs(pipeline["network_accuracy_cpu"] - pipeline["deployed_accuracy_ort_cpu"]) <= 0.02
    assert {"training", "inference", "share_of_peak", "pytest_gpu", "ort_cuda"} <= set(
        results["skipped"]
    )
    assert "no CUDA device" in results["skipped"]["training"]
    assert "skipped" in (tmp_path / "gpu_check.md").read_text()
