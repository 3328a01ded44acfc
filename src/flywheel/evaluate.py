"""Evaluate stage: accuracy, size and speed of every variant, and the winner among them.

The winner is the variant with the lowest batch-1 median latency among those at most
``gate.max_drop`` worse than fp32 on the gate metric (accuracy, r2, rmse or mae).
Timings are taken in interleaved rounds, every
variant measured once per round in a rotating order, so a burst of noise on a small shared
machine lands on all variants rather than on whichever happened to run at that moment.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from flywheel.config import EvaluateConfig, Params
from flywheel.data.arrays import load_split
from flywheel.families import get_family
from flywheel.layout import Layout
from flywheel.metrics import compute_metrics, worse_by
from flywheel.ort_session import available_providers, make_session
from flywheel.training import load_network

log = logging.getLogger(__name__)

REFERENCE = "fp32"
INPUT_NAME = "input"
# Rounds of interleaved timing in run_evaluate; each round takes 1/ROUNDS of the runs.
ROUNDS = 5
# Accuracies are ratios of counts: this absorbs float error in "ref - max_drop" comparisons.
_EPS = 1e-9

Runner = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Timing:
    latency_p50_ms: float
    latency_p99_ms: float
    throughput_per_s: float


@dataclass(frozen=True)
class VariantResult:
    score: float  # the gate metric, in its own units and direction
    metrics: dict[str, float]
    size_bytes: int
    latency_p50_ms: float
    latency_p99_ms: float
    throughput_per_s: float
    provider: str


def qualifies(ref: VariantResult, r: VariantResult, max_drop: float, metric: str) -> bool:
    return worse_by(metric, ref.score, r.score) <= max_drop + _EPS


def choose_winner(
    results: Mapping[str, VariantResult],
    max_drop: float,
    reference: str = REFERENCE,
    metric: str = "accuracy",
) -> str:
    """The fastest (batch-1 p50) variant at most ``max_drop`` worse than ``reference`` on
    ``metric`` (higher is better for accuracy and r2, lower for rmse and mae).

    The reference always qualifies, so there is always a winner; ties on latency go to the
    smaller file, then to the name, so the choice never depends on dict order.
    """
    if reference not in results:
        raise KeyError(f"reference variant {reference!r} has no result")
    ref = results[reference]
    qualified = [
        name
        for name, r in results.items()
        if name == reference or qualifies(ref, r, max_drop, metric)
    ]
    return min(
        qualified,
        key=lambda n: (results[n].latency_p50_ms, results[n].size_bytes, n),
    )


def _onnx_runner(path: Path, cfg: EvaluateConfig, providers: list[str]) -> tuple[Runner, str]:
    session = make_session(path, intra_op_threads=cfg.intra_op_threads, providers=providers)

    def run(batch: np.ndarray) -> np.ndarray:
        return session.run(None, {INPUT_NAME: batch})[0]

    return run, session.get_providers()[0]


def _torch_runner(net: nn.Module) -> Runner:
    net = net.cpu().eval()

    def run(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return net(torch.from_numpy(batch)).numpy()

    return run


def _metrics(
    run: Runner, x: np.ndarray, y: np.ndarray, batch_size: int, regression: bool
) -> dict[str, float]:
    outputs = np.concatenate([run(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
    return {k: round(v, 6) for k, v in compute_metrics(outputs, y, regression).items()}


def _time_calls(run: Runner, batches: list[np.ndarray], n: int, start: int) -> list[float]:
    """Milliseconds per call for ``n`` calls, cycling through ``batches`` from ``start``."""
    out = []
    for i in range(n):
        batch = batches[(start + i) % len(batches)]
        t0 = time.perf_counter_ns()
        run(batch)
        out.append((time.perf_counter_ns() - t0) / 1e6)
    return out


def _split_runs(total: int, rounds: int) -> list[int]:
    """``total`` runs spread over ``rounds`` as evenly as possible (at least one per round)."""
    rounds = max(1, min(rounds, total))
    return [total // rounds + (1 if r < total % rounds else 0) for r in range(rounds)]


def _benchmark(
    runners: Mapping[str, Runner], x: np.ndarray, cfg: EvaluateConfig, rounds: int
) -> dict[str, Timing]:
    """Batch-1 latency percentiles and batch throughput for every runner, interleaved."""
    singles = [np.ascontiguousarray(x[i : i + 1]) for i in range(min(len(x), 256))]
    reps = -(-cfg.throughput_batch // max(len(x), 1))
    big = np.ascontiguousarray(np.concatenate([x] * reps)[: cfg.throughput_batch])
    names = list(runners)
    for name in names:
        _time_calls(runners[name], singles, cfg.warmup_runs, 0)
        _time_calls(runners[name], [big], max(1, cfg.warmup_runs // 10), 0)
    latency: dict[str, list[float]] = {n: [] for n in names}
    batch_ms: dict[str, list[float]] = {n: [] for n in names}
    lat_plan = _split_runs(cfg.latency_runs, rounds)
    tp_plan = _split_runs(cfg.throughput_runs, rounds)
    for r in range(max(len(lat_plan), len(tp_plan))):
        # Rotate the order so no variant always runs first (cold caches) or last.
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            if r < len(lat_plan):
                latency[name] += _time_calls(runners[name], singles, lat_plan[r], sum(lat_plan[:r]))
            if r < len(tp_plan):
                batch_ms[name] += _time_calls(runners[name], [big], tp_plan[r], 0)
    return {
        n: Timing(
            latency_p50_ms=round(float(np.percentile(latency[n], 50)), 5),
            latency_p99_ms=round(float(np.percentile(latency[n], 99)), 5),
            throughput_per_s=round(
                cfg.throughput_batch * 1000.0 / float(np.median(batch_ms[n])), 1
            ),
        )
        for n in names
    }


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Pins torch to ``threads`` intra-op threads for the block (0 leaves torch's default).

    ORT sessions get ``intra_op_threads`` too, so eager PyTorch and ONNX Runtime are timed
    with the same thread budget; the previous setting is restored afterwards.
    """
    saved = torch.get_num_threads()
    if threads > 0:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


def measure_variant(
    path: Path,
    x: np.ndarray,
    y: np.ndarray,
    cfg: EvaluateConfig,
    providers: list[str],
    metric: str = "accuracy",
) -> VariantResult:
    """The metrics on (``x``, ``y``), file size and speed of one ONNX model on its own."""
    run, provider = _onnx_runner(Path(path), cfg, providers)
    timing = _benchmark({"v": run}, x, cfg, rounds=1)["v"]
    metrics = _metrics(run, x, y, cfg.throughput_batch, regression=metric != "accuracy")
    return VariantResult(
        score=metrics[metric],
        metrics=metrics,
        size_bytes=Path(path).stat().st_size,
        provider=provider,
        **asdict(timing),
    )


def measure_torch_eager(net: nn.Module, x: np.ndarray, cfg: EvaluateConfig) -> Timing:
    """Eager PyTorch fp32 on CPU, with torch's threads set to ``cfg.intra_op_threads`` when > 0."""
    with torch_threads(cfg.intra_op_threads):
        return _benchmark({"torch": _torch_runner(net)}, x, cfg, rounds=1)["torch"]


def run_evaluate(params: Params, layout: Layout) -> dict[str, object]:
    cfg = params.evaluate
    metric = params.gate.metric
    spec = get_family(params.task).load_spec(layout.preprocessing_spec)
    x, y = load_split(layout.split_file("test"))
    providers = available_providers()
    variants: list[str] = [v for v in params.compress.variants if layout.variant_file(v).is_file()]
    missing = sorted(set(params.compress.variants) - set(variants))
    if REFERENCE not in variants:
        raise FileNotFoundError(f"{layout.variant_file(REFERENCE)} not found: run export first")
    if missing:
        raise FileNotFoundError(f"variants not found (run compress first): {missing}")

    runners: dict[str, Runner] = {}
    provider_of: dict[str, str] = {}
    for v in variants:
        runners[v], provider_of[v] = _onnx_runner(layout.variant_file(v), cfg, providers)
    runners["torch_eager"] = _torch_runner(load_network(layout.checkpoint, params, spec))
    with torch_threads(cfg.intra_op_threads):
        metrics = {
            n: _metrics(run, x, y, cfg.throughput_batch, params.is_regression)
            for n, run in runners.items()
        }
        timing = _benchmark(runners, x, cfg, rounds=ROUNDS)

    results = {
        v: VariantResult(
            score=metrics[v][metric],
            metrics=metrics[v],
            size_bytes=layout.variant_file(v).stat().st_size,
            provider=provider_of[v],
            **asdict(timing[v]),
        )
        for v in variants
    }
    winner = choose_winner(results, params.gate.max_drop, metric=metric)
    ref, win, eager = results[REFERENCE], results[winner], timing["torch_eager"]
    report: dict[str, object] = {
        "reference": REFERENCE,
        "winner": winner,
        "metric": metric,
        "higher_is_better": params.higher_is_better,
        "max_drop": params.gate.max_drop,
        "provider": provider_of[winner],
        "intra_op_threads": cfg.intra_op_threads,
        "samples": len(x),
        "variants": {
            v: {
                **asdict(r),
                "file": layout.variant_file(v).name,
                "qualified": v == REFERENCE or qualifies(ref, r, params.gate.max_drop, metric),
            }
            for v, r in results.items()
        },
        "torch_eager": {
            "score": metrics["torch_eager"][metric],
            "metrics": metrics["torch_eager"],
            "provider": "torch-cpu",
            **asdict(eager),
        },
        "ratios": {
            "winner_size_vs_fp32": round(win.size_bytes / ref.size_bytes, 4),
            "winner_p50_vs_fp32": round(win.latency_p50_ms / ref.latency_p50_ms, 4),
            "winner_p50_vs_torch_eager": round(win.latency_p50_ms / eager.latency_p50_ms, 4),
            "fp32_p50_vs_torch_eager": round(ref.latency_p50_ms / eager.latency_p50_ms, 4),
            "winner_throughput_vs_fp32": round(win.throughput_per_s / ref.throughput_per_s, 4),
            "winner_metric_drop": round(worse_by(metric, ref.score, win.score), 6),
        },
    }
    layout.evaluation_report.parent.mkdir(parents=True, exist_ok=True)
    layout.evaluation_report.write_text(json.dumps(report, indent=2) + "\n")
    log.info("evaluate: winner %s (p50 %.4f ms)", winner, win.latency_p50_ms)
    return report
