"""How the inference benchmark times runners: warm-up and run counts that fit a time budget,
interleaved rounds, and latency and throughput figures with their spread."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmarks.common import (
    percentile,
    spread,
)


@dataclass(frozen=True)
class Plan:
    warmup: int
    rounds: int
    latency_budget_s: float
    batch_budget_s: float
    max_latency_runs: int
    max_batch_runs: int
    batch: int = 64


FULL = Plan(warmup=30, rounds=10, latency_budget_s=30.0, batch_budget_s=20.0,
            max_latency_runs=2000, max_batch_runs=200)  # fmt: skip
QUICK = Plan(warmup=10, rounds=4, latency_budget_s=6.0, batch_budget_s=4.0,
             max_latency_runs=300, max_batch_runs=30)  # fmt: skip


def _estimate(run: Any, batch: np.ndarray, calls: int = 3) -> float:
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        run(batch)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def run_counts(per_call_s: dict[str, float], budget_s: float, lo: int, hi: int) -> int:
    """Calls per runner so that all runners together fit ``budget_s``, within [lo, hi]."""
    total = sum(per_call_s.values())
    return int(min(hi, max(lo, budget_s / max(total, 1e-9))))


def timing_stats(samples: Any, batch: int) -> dict[str, Any]:
    """Latency percentiles over all calls, and per-round medians/throughputs as the spread."""
    latency = samples.flat_latency()
    per_round = [float(np.median(r)) for r in samples.latency_ms if r]
    batch_rounds = [batch * 1000.0 / float(np.median(r)) for r in samples.batch_ms if r]
    return {
        "latency_p50_ms": round(percentile(latency, 50), 5),
        "latency_p99_ms": round(percentile(latency, 99), 5),
        "latency_round_medians_ms": spread(per_round),
        "latency_calls": len(latency),
        "throughput_per_s": round(batch * 1000.0 / float(np.median(samples.flat_batch())), 1),
        "throughput_rounds_per_s": spread(batch_rounds),
        "batch_calls": len(samples.flat_batch()),
    }


def time_all(runners: dict[str, Any], x: np.ndarray, plan: Plan) -> dict[str, Any]:
    from flywheel.measure.timing import TimingPlan, full_batch, time_interleaved

    one = np.ascontiguousarray(x[:1])
    big = full_batch(x, plan.batch)
    per_call = {n: _estimate(r, one) for n, r in runners.items()}
    per_batch = {n: _estimate(r, big) for n, r in runners.items()}
    latency_runs = run_counts(per_call, plan.latency_budget_s, 100, plan.max_latency_runs)
    batch_runs = run_counts(per_batch, plan.batch_budget_s, 10, plan.max_batch_runs)
    timing = TimingPlan(
        warmup=plan.warmup,
        latency_runs=latency_runs,
        batch=plan.batch,
        batch_runs=batch_runs,
        rounds=plan.rounds,
    )
    samples = time_interleaved(runners, x, timing)
    return {n: timing_stats(s, plan.batch) for n, s in samples.items()}


def count_macs(net: Any, example: Any) -> int | None:
    try:
        import torch_pruning as tp

        macs, _ = tp.utils.count_ops_and_params(net, example)
        return int(macs)
    except Exception:  # counting is informative only; some graphs defeat the tracer
        return None
