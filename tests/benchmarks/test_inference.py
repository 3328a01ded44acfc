"""The inference benchmark's pure parts: discovery, run counts and timing statistics."""

from __future__ import annotations

from pathlib import Path

import pytest
from benchmarks.inference_families import discover
from benchmarks.inference_timing import run_counts, timing_stats

from flywheel.measure.timing import Samples


def test_discover_lists_default_then_examples(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text("task: image_classification\n")
    for name in ("text", "alpha"):
        (tmp_path / "examples" / name).mkdir(parents=True)
        (tmp_path / "examples" / name / "params.yaml").write_text("")
    (tmp_path / "examples" / "no-params").mkdir()
    assert [e.name for e in discover(tmp_path)] == ["default", "alpha", "text"]


def test_run_counts_share_a_time_budget() -> None:
    assert run_counts({"a": 0.001, "b": 0.001}, budget_s=1.0, lo=10, hi=10_000) == 500
    assert run_counts({"a": 1.0}, budget_s=1.0, lo=10, hi=100) == 10
    assert run_counts({"a": 1e-7}, budget_s=1.0, lo=10, hi=100) == 100


def test_timing_stats_over_rounds() -> None:
    samples = Samples(latency_ms=[[1.0, 2.0, 3.0], [2.0, 2.0, 4.0]], batch_ms=[[64.0], [32.0]])
    stats = timing_stats(samples, batch=64)
    assert stats["latency_p50_ms"] == 2.0
    assert stats["latency_calls"] == 6 and stats["batch_calls"] == 2
    assert stats["latency_round_medians_ms"]["min"] == 2.0
    assert stats["throughput_per_s"] == pytest.approx(64 * 1000 / 48.0, rel=1e-3)
    assert stats["throughput_rounds_per_s"]["max"] == pytest.approx(2000.0)
