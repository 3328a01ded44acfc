"""Evaluate stage: accuracy, size and speed of every variant, and the winner among them.

The winner is the variant with the lowest batch-1 median latency among those at most
``gate.max_drop`` worse than fp32 on the gate metric (accuracy, r2, rmse or mae); report-only
variants (unstructured sparsity) are measured and shown but never win. Timings are taken in
interleaved rounds, every variant measured once per round in a rotating order, so a burst of
noise on a small shared machine lands on all variants rather than on whichever happened to
run at that moment. The report carries the whole table with one verdict per variant, the
variants skipped on this machine (FP16 without a GPU) and why, each variant's fastest ONNX
Runtime graph optimisation level (measured by the compress stage) and every pruned variant
against the unpruned one of the same precision.
"""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from flywheel.compress.search import (
    REPORT_ONLY_KINDS,
    gives_speedup,
    kind_of,
    planned_variants,
    pruning_comparison,
    verdicts,
)
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
    report_only: Collection[str] = (),
) -> str:
    """The fastest (batch-1 p50) variant at most ``max_drop`` worse than ``reference`` on
    ``metric`` (higher is better for accuracy and r2, lower for rmse and mae), leaving out
    the ``report_only`` variants.

    The reference always qualifies, so there is always a winner; ties on latency go to the
    smaller file, then to the name, so the choice never depends on dict order.
    """
    if reference not in results:
        raise KeyError(f"reference variant {reference!r} has no result")
    ref = results[reference]
    qualified = [
        name
        for name, r in results.items()
        if name == reference or (name not in report_only and qualifies(ref, r, max_drop, metric))
    ]
    return min(
        qualified,
        key=lambda n: (results[n].latency_p50_ms, results[n].size_bytes, n),
    )


def onnx_runner(
    path: Path,
    threads: int,
    providers: list[str],
    level: ort.GraphOptimizationLevel = ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
) -> tuple[Runner, str]:
    """A batch -> outputs function over one ONNX Runtime session, and its provider."""
    session = make_session(
        path, intra_op_threads=threads, graph_optimization=level, providers=providers
    )

    def run(batch: np.ndarray) -> np.ndarray:
        return session.run(None, {INPUT_NAME: batch})[0]

    return run, session.get_providers()[0]


def torch_runner(net: nn.Module) -> Runner:
    net = net.cpu().eval()

    def run(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return net(torch.from_numpy(batch)).numpy()

    return run


def output_metrics(
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


@dataclass
class Samples:
    """Raw call times of one runner, per round: batch-1 calls and full-batch calls."""

    latency_ms: list[list[float]] = field(default_factory=list)
    batch_ms: list[list[float]] = field(default_factory=list)

    def flat_latency(self) -> list[float]:
        return [t for r in self.latency_ms for t in r]

    def flat_batch(self) -> list[float]:
        return [t for r in self.batch_ms for t in r]


def single_rows(x: np.ndarray, limit: int = 256) -> list[np.ndarray]:
    return [np.ascontiguousarray(x[i : i + 1]) for i in range(min(len(x), limit))]


def full_batch(x: np.ndarray, size: int) -> np.ndarray:
    """``size`` rows of ``x``, repeating it when it is shorter."""
    reps = -(-size // max(len(x), 1))
    return np.ascontiguousarray(np.concatenate([x] * reps)[:size])


def time_interleaved(
    runners: Mapping[str, Runner],
    x: np.ndarray,
    *,
    warmup: int,
    latency_runs: int,
    batch: int,
    batch_runs: int,
    rounds: int,
) -> dict[str, Samples]:
    """Batch-1 and full-batch call times of every runner, taken in interleaved rounds.

    Each round runs every runner once, in an order rotated by one per round, so no runner
    always goes first (cold caches) or last; ``batch_runs=0`` times batch 1 alone.
    """
    singles = single_rows(x)
    big = full_batch(x, batch) if batch_runs > 0 else None
    names = list(runners)
    for name in names:
        _time_calls(runners[name], singles, warmup, 0)
        if big is not None:
            _time_calls(runners[name], [big], max(1, warmup // 10), 0)
    samples = {n: Samples() for n in names}
    lat_plan = _split_runs(latency_runs, rounds)
    tp_plan = _split_runs(batch_runs, rounds) if big is not None else []
    for r in range(max(len(lat_plan), len(tp_plan))):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            if r < len(lat_plan):
                samples[name].latency_ms.append(
                    _time_calls(runners[name], singles, lat_plan[r], sum(lat_plan[:r]))
                )
            if big is not None and r < len(tp_plan):
                samples[name].batch_ms.append(_time_calls(runners[name], [big], tp_plan[r], 0))
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


def _benchmark(
    runners: Mapping[str, Runner], x: np.ndarray, cfg: EvaluateConfig, rounds: int
) -> dict[str, Timing]:
    """Batch-1 latency percentiles and batch throughput for every runner, interleaved."""
    samples = time_interleaved(
        runners,
        x,
        warmup=cfg.warmup_runs,
        latency_runs=cfg.latency_runs,
        batch=cfg.throughput_batch,
        batch_runs=cfg.throughput_runs,
        rounds=rounds,
    )
    return {n: summarise(s, cfg.throughput_batch) for n, s in samples.items()}


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
    run, provider = onnx_runner(Path(path), cfg.intra_op_threads, providers)
    timing = _benchmark({"v": run}, x, cfg, rounds=1)["v"]
    metrics = output_metrics(run, x, y, cfg.throughput_batch, regression=metric != "accuracy")
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
        return _benchmark({"torch": torch_runner(net)}, x, cfg, rounds=1)["torch"]


def state_dict_bytes(net: nn.Module) -> int:
    """Size of the network's weights as PyTorch saves them: eager fp32's "file size"."""
    buffer = io.BytesIO()
    torch.save(net.state_dict(), buffer)
    return buffer.getbuffer().nbytes


def _recipe(layout: Layout, variant: str) -> dict[str, Any]:
    path = layout.recipe_file(variant)
    return dict(json.loads(path.read_text())) if path.is_file() else {}


def _search_fields(recipe: Mapping[str, Any]) -> dict[str, Any]:
    """What the compress stage recorded that the table should show beside the timings."""
    prune = recipe.get("prune") or {}
    levels = recipe.get("ort_graph_optimization") or {}
    sparsity = recipe.get("sparsity") or {}
    return {
        k: v
        for k, v in {
            "prune_ratio": prune.get("ratio"),
            "macs_ratio": prune.get("macs_ratio"),
            "zero_weight_share": sparsity.get("zero_share"),
            "ort_level_fastest": levels.get("fastest"),
            "ort_levels_p50_ms": levels.get("p50_ms"),
        }.items()
        if v is not None
    }


def run_evaluate(params: Params, layout: Layout) -> dict[str, object]:
    cfg = params.evaluate
    metric = params.gate.metric
    spec = get_family(params.task).load_spec(layout.preprocessing_spec)
    x, y = load_split(layout.split_file("test"))
    providers = available_providers()
    plan = planned_variants(params.compress.variants, params.compress.ratios)
    skipped = {
        p.name: str(_recipe(layout, p.name)["skipped"])
        for p in plan
        if "skipped" in _recipe(layout, p.name)
    }
    variants = [p.name for p in plan if p.name not in skipped]
    missing = sorted(v for v in variants if not layout.variant_file(v).is_file())
    if REFERENCE in missing:
        raise FileNotFoundError(f"{layout.variant_file(REFERENCE)} not found: run export first")
    if missing:
        raise FileNotFoundError(f"variants not found (run compress first): {missing}")
    report_only = [v for v in variants if kind_of(v) in REPORT_ONLY_KINDS]

    runners: dict[str, Runner] = {}
    provider_of: dict[str, str] = {}
    for v in variants:
        runners[v], provider_of[v] = onnx_runner(
            layout.variant_file(v), cfg.intra_op_threads, providers
        )
    net = load_network(layout.checkpoint, params, spec)
    runners["torch_eager"] = torch_runner(net)
    with torch_threads(cfg.intra_op_threads):
        metrics = {
            n: output_metrics(run, x, y, cfg.throughput_batch, params.is_regression)
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
    winner = choose_winner(results, params.gate.max_drop, metric=metric, report_only=report_only)
    ref, win, eager = results[REFERENCE], results[winner], timing["torch_eager"]
    qualified = [
        v
        for v, r in results.items()
        if v == REFERENCE or qualifies(ref, r, params.gate.max_drop, metric)
    ]
    why = verdicts(
        results,
        winner,
        metric=metric,
        max_drop=params.gate.max_drop,
        qualified=qualified,
        report_only=report_only,
    )
    extra = {v: _search_fields(_recipe(layout, v)) for v in variants}
    report: dict[str, object] = {
        "reference": REFERENCE,
        "winner": winner,
        "metric": metric,
        "higher_is_better": params.higher_is_better,
        "max_drop": params.gate.max_drop,
        "provider": provider_of[winner],
        "intra_op_threads": cfg.intra_op_threads,
        "samples": len(x),
        "rule": (
            "fastest batch-1 p50 among variants at most max_drop worse than fp32 on the gate "
            "metric; report-only variants never win"
        ),
        "variants": {
            v: {
                **asdict(r),
                "file": layout.variant_file(v).name,
                "kind": kind_of(v),
                "qualified": v in qualified,
                "report_only": v in report_only,
                **extra[v],
                "verdict": why[v],
            }
            for v, r in results.items()
        },
        "skipped": skipped,
        "torch_eager": {
            "score": metrics["torch_eager"][metric],
            "metrics": metrics["torch_eager"],
            "provider": "torch-cpu",
            "size_bytes": state_dict_bytes(net),
            **asdict(eager),
        },
        "pruning": pruning_comparison(
            {v: kind_of(v) for v in variants},
            {v: r.latency_p50_ms for v, r in results.items()},
            {v: float(extra[v]["macs_ratio"]) for v in variants if "macs_ratio" in extra[v]},
            {v: float(extra[v]["prune_ratio"]) for v in variants if "prune_ratio" in extra[v]},
        ),
        "unstructured": {
            v: {
                "p50_vs_fp32": round(results[v].latency_p50_ms / ref.latency_p50_ms, 4),
                "gives_speedup": gives_speedup(results[v].latency_p50_ms, ref.latency_p50_ms),
                "zero_weight_share": extra[v].get("zero_weight_share"),
            }
            for v in report_only
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
