"""The timing harness: call times of several runners taken in interleaved rounds.

Each round runs every runner once, in an order rotated by one per round, so a burst of
noise on a small shared machine lands on all of them rather than on whichever happened to
run at that moment, and no runner always goes first (cold caches) or last. Pure Python and
numpy: evaluate, compress, the gate and the benchmarks all time models with it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

Runner = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Timing:
    latency_p50_ms: float
    latency_p99_ms: float
    throughput_per_s: float


@dataclass
class Samples:
    """Raw call times of one runner, per round: batch-1 calls and full-batch calls."""

    latency_ms: list[list[float]] = field(default_factory=list)
    batch_ms: list[list[float]] = field(default_factory=list)

    def flat_latency(self) -> list[float]:
        return [t for r in self.latency_ms for t in r]

    def flat_batch(self) -> list[float]:
        return [t for r in self.batch_ms for t in r]


def time_calls(run: Runner, batches: list[np.ndarray], n: int, start: int = 0) -> list[float]:
    """Milliseconds per call for ``n`` calls, cycling through ``batches`` from ``start``."""
    out = []
    for i in range(n):
        batch = batches[(start + i) % len(batches)]
        t0 = time.perf_counter_ns()
        run(batch)
        out.append((time.perf_counter_ns() - t0) / 1e6)
    return out


def split_runs(total: int, rounds: int) -> list[int]:
    """``total`` runs spread over ``rounds`` as evenly as possible (at least one per round)."""
    rounds = max(1, min(rounds, total))
    return [total // rounds + (1 if r < total % rounds else 0) for r in range(rounds)]


def single_rows(x: np.ndarray, limit: int = 256) -> list[np.ndarray]:
    return [np.ascontiguousarray(x[i : i + 1]) for i in range(min(len(x), limit))]


def full_batch(x: np.ndarray, size: int) -> np.ndarray:
    """``size`` rows of ``x``, repeating it when it is shorter."""
    reps = -(-size // max(len(x), 1))
    return np.ascontiguousarray(np.concatenate([x] * reps)[:size])


@dataclass(frozen=True)
class TimingPlan:
    """How many calls to time: warm-up, batch-1 calls, full-batch calls, rounds."""

    warmup: int
    latency_runs: int
    batch: int
    batch_runs: int
    rounds: int


def _warm_up(
    runners: Mapping[str, Runner],
    singles: Mapping[str, list[np.ndarray]],
    big: Mapping[str, np.ndarray] | None,
    warmup: int,
) -> None:
    for name, run in runners.items():
        time_calls(run, singles[name], warmup)
        if big is not None:
            time_calls(run, [big[name]], max(1, warmup // 10))


def time_interleaved(
    runners: Mapping[str, Runner], x: np.ndarray | Mapping[str, np.ndarray], plan: TimingPlan
) -> dict[str, Samples]:
    """Batch-1 and full-batch call times of every runner, taken in interleaved rounds;
    ``plan.batch_runs=0`` times batch 1 alone. ``x`` is one input for all, or one per
    runner (the same rows encoded for each model's own preprocessing)."""
    names = list(runners)
    inputs = {n: x for n in names} if isinstance(x, np.ndarray) else {n: x[n] for n in names}
    singles = {n: single_rows(inputs[n]) for n in names}
    big = {n: full_batch(inputs[n], plan.batch) for n in names} if plan.batch_runs > 0 else None
    _warm_up(runners, singles, big, plan.warmup)
    samples = {n: Samples() for n in names}
    lat_plan = split_runs(plan.latency_runs, plan.rounds)
    tp_plan = split_runs(plan.batch_runs, plan.rounds) if big is not None else []
    for r in range(max(len(lat_plan), len(tp_plan))):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            if r < len(lat_plan):
                samples[name].latency_ms.append(
                    time_calls(runners[name], singles[name], lat_plan[r], sum(lat_plan[:r]))
                )
            if big is not None and r < len(tp_plan):
                samples[name].batch_ms.append(time_calls(runners[name], [big[name]], tp_plan[r]))
    return samples


def summarise(s: Samples, batch: int) -> Timing:
    batch_ms = s.flat_batch()
    latency = s.flat_latency()
    return Timing(
        latency_p50_ms=round(float(np.percentile(latency, 50)), 5),
        latency_p99_ms=round(float(np.percentile(latency, 99)), 5),
        throughput_per_s=(
            round(batch * 1000.0 / float(np.median(batch_ms)), 1) if batch_ms else float("nan")
        ),
    )


def benchmark(runners: Mapping[str, Runner], x: np.ndarray, plan: TimingPlan) -> dict[str, Timing]:
    """Batch-1 latency percentiles and batch throughput for every runner, interleaved."""
    samples = time_interleaved(runners, x, plan)
    return {n: summarise(s, plan.batch) for n, s in samples.items()}


def latency_noise(s: Samples) -> float:
    """The relative spread of a runner's per-round batch-1 medians: how far apart two
    measurements of the same model land on this machine, in this run (0.05 = 5 %)."""
    medians = [float(np.median(r)) for r in s.latency_ms if r]
    if len(medians) < 2:
        return 0.0
    return (max(medians) - min(medians)) / max(float(np.median(medians)), 1e-12)
