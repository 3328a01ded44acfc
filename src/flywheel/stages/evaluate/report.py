"""``metrics/evaluation.json``: the evaluate stage's findings laid out for readers.

The report carries the whole table with one verdict per variant, the variants skipped on
this machine (FP16 without a GPU) and why, each variant's fastest ONNX Runtime graph
optimisation level (measured by the compress stage) and every pruned variant against the
unpruned one of the same precision. Pure: it formats what was measured, measures nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from flywheel.core.config import Params
from flywheel.measure.metrics import worse_by
from flywheel.measure.selection import (
    REFERENCE,
    Ranked,
    VariantResult,
    VerdictRules,
    gives_speedup,
    pruning_comparison,
    qualifies,
    verdicts,
)
from flywheel.measure.timing import Timing
from flywheel.stages.compress.variants import kind_of, unpruned_of

RULE = (
    "fastest batch-1 p50 among variants at most max_drop worse than fp32 on the gate "
    "metric, the smallest file among those tied with it within the timing noise "
    "(evaluate.latency_noise_floor at least); report-only variants never win; the gate "
    "deploys the first of the ranking that passes it against production"
)


@dataclass(frozen=True)
class Findings:
    results: dict[str, VariantResult]
    winner: str
    ranking: list[Ranked]
    report_only: list[str]
    skipped: dict[str, str]
    recipes: dict[str, dict[str, Any]]
    files: dict[str, str]
    eager_metrics: dict[str, float]
    eager_timing: Timing
    eager_bytes: int
    samples: int


def search_fields(recipe: Mapping[str, Any]) -> dict[str, Any]:
    """What the compress stage recorded that the table should show beside the timings."""
    prune = recipe.get("prune") or {}
    levels = recipe.get("ort_graph_optimization") or {}
    sparsity = recipe.get("sparsity") or {}
    fields = {
        "prune_ratio": prune.get("ratio"),
        "macs_ratio": prune.get("macs_ratio"),
        "zero_weight_share": sparsity.get("zero_share"),
        "ort_level_fastest": levels.get("fastest"),
        "ort_levels_p50_ms": levels.get("p50_ms"),
    }
    return {k: v for k, v in fields.items() if v is not None}


def _variant_rows(params: Params, f: Findings) -> dict[str, Any]:
    gate = params.gate
    ref = f.results[REFERENCE]
    qualified = [
        v
        for v, r in f.results.items()
        if v == REFERENCE or qualifies(ref, r, gate.max_drop, gate.metric)
    ]
    rules = VerdictRules(gate.metric, gate.max_drop, params.evaluate.speedup_threshold)
    why = verdicts(
        f.results,
        f.winner,
        rules,
        qualified=qualified,
        report_only=f.report_only,
        ranking=f.ranking,
    )
    place = {entry.name: i + 1 for i, entry in enumerate(f.ranking)}
    return {
        v: {
            **asdict(r),
            "rank": place.get(v),
            "file": f.files[v],
            "kind": kind_of(v),
            "qualified": v in qualified,
            "report_only": v in f.report_only,
            **search_fields(f.recipes[v]),
            "verdict": why[v],
        }
        for v, r in f.results.items()
    }


def _pruning(f: Findings, extra: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    bases = {v: b for v in f.results if (b := unpruned_of(v)) is not None}
    return pruning_comparison(
        bases,
        {v: r.latency_p50_ms for v, r in f.results.items()},
        {v: float(e["macs_ratio"]) for v, e in extra.items() if "macs_ratio" in e},
        {v: float(e["prune_ratio"]) for v, e in extra.items() if "prune_ratio" in e},
    )


def _ratios(metric: str, f: Findings) -> dict[str, float]:
    ref, win, eager = f.results[REFERENCE], f.results[f.winner], f.eager_timing
    return {
        "winner_size_vs_fp32": round(win.size_bytes / ref.size_bytes, 4),
        "winner_p50_vs_fp32": round(win.latency_p50_ms / ref.latency_p50_ms, 4),
        "winner_p50_vs_torch_eager": round(win.latency_p50_ms / eager.latency_p50_ms, 4),
        "fp32_p50_vs_torch_eager": round(ref.latency_p50_ms / eager.latency_p50_ms, 4),
        "winner_throughput_vs_fp32": round(win.throughput_per_s / ref.throughput_per_s, 4),
        "winner_metric_drop": round(worse_by(metric, ref.score, win.score), 6),
    }


def build_report(params: Params, f: Findings) -> dict[str, object]:
    metric = params.gate.metric
    ref = f.results[REFERENCE]
    extra = {v: search_fields(f.recipes[v]) for v in f.results}
    threshold = params.evaluate.speedup_threshold
    return {
        "reference": REFERENCE,
        "winner": f.winner,
        # Deployable candidates, best first: the gate tries them in this order.
        "ranking": [r.name for r in f.ranking],
        "latency_noise_floor": params.evaluate.latency_noise_floor,
        "metric": metric,
        "higher_is_better": params.higher_is_better,
        "max_drop": params.gate.max_drop,
        "provider": f.results[f.winner].provider,
        "intra_op_threads": params.evaluate.intra_op_threads,
        "samples": f.samples,
        "rule": RULE,
        "variants": _variant_rows(params, f),
        "skipped": f.skipped,
        "torch_eager": {
            "score": f.eager_metrics[metric],
            "metrics": f.eager_metrics,
            "provider": "torch-cpu",
            "size_bytes": f.eager_bytes,
            **asdict(f.eager_timing),
        },
        "pruning": _pruning(f, extra),
        "unstructured": {
            v: {
                "p50_vs_fp32": round(f.results[v].latency_p50_ms / ref.latency_p50_ms, 4),
                "gives_speedup": gives_speedup(
                    f.results[v].latency_p50_ms, ref.latency_p50_ms, threshold
                ),
                "zero_weight_share": extra[v].get("zero_weight_share"),
            }
            for v in f.report_only
        },
        "ratios": _ratios(metric, f),
    }
