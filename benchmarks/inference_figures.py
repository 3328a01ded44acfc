"""The inference benchmark's headline ratios for a family (deployed variant vs eager and
ORT fp32, pruning and sparsity) and the targets they are checked against."""

from __future__ import annotations

from typing import Any

from benchmarks import targets
from benchmarks.common import (
    ratio,
)


def headline(r: dict[str, Any]) -> dict[str, Any]:
    """The deployed variant against eager fp32 and ORT fp32, and pruning and sparsity ratios."""
    m, win = r["models"], r["winner"]
    eager, fp32, best = m["torch-eager"], m["fp32"], m[win]
    sign = 1.0 if r["higher_is_better"] else -1.0
    out: dict[str, Any] = {
        "deployed": win,
        "deployed_p50_vs_eager": ratio(best["latency_p50_ms"], eager["latency_p50_ms"]),
        "deployed_p99_vs_eager": ratio(best["latency_p99_ms"], eager["latency_p99_ms"]),
        "deployed_throughput_vs_eager": ratio(best["throughput_per_s"], eager["throughput_per_s"]),
        "deployed_size_vs_eager": ratio(best["size_bytes"], eager["size_bytes"]),
        "deployed_size_vs_ort_fp32": ratio(best["size_bytes"], fp32["size_bytes"]),
        "deployed_metric_drop_vs_eager": round(sign * (eager["score"] - best["score"]), 6),
        "ort_fp32_p50_vs_eager": ratio(fp32["latency_p50_ms"], eager["latency_p50_ms"]),
        "deployed_p50_vs_ort_fp32": ratio(best["latency_p50_ms"], fp32["latency_p50_ms"]),
    }
    from flywheel.core.sections import EvaluateConfig
    from flywheel.measure.selection import gives_speedup
    from flywheel.stages.compress.variants import unpruned_of

    threshold = EvaluateConfig().speedup_threshold
    pruning = []
    for v, macs in r["search"]["macs_ratio"].items():
        base = unpruned_of(v)
        if base in m and v in m:
            pruning.append(
                {
                    "variant": v,
                    "unpruned": base,
                    "macs_ratio": macs,
                    "p50_vs_unpruned": ratio(m[v]["latency_p50_ms"], m[base]["latency_p50_ms"]),
                    "throughput_vs_unpruned": ratio(
                        m[v]["throughput_per_s"], m[base]["throughput_per_s"]
                    ),
                }
            )
    out["pruning"] = pruning
    out["unstructured"] = {
        v: {
            "p50_vs_fp32": ratio(m[v]["latency_p50_ms"], fp32["latency_p50_ms"]),
            "gives_speedup": gives_speedup(
                m[v]["latency_p50_ms"], fp32["latency_p50_ms"], threshold
            ),
        }
        for v in r["search"]["report_only"]
        if v in m
    }
    return out


def family_targets(r: dict[str, Any]) -> list[dict[str, Any]]:
    h, task = r["headline"], r["task"]
    eager_score = r["models"]["torch-eager"]["score"]
    checks = []
    goal = targets.LATENCY_VS_EAGER.get(task)
    if goal is not None:
        checks.append(
            targets.check(
                "deployed p50 vs eager fp32 (CPU, batch 1)", h["deployed_p50_vs_eager"], goal
            )
        )
    checks.append(
        targets.check(
            "deployed size vs eager fp32", h["deployed_size_vs_eager"], targets.SIZE_VS_EAGER
        )
    )
    checks.append(
        targets.check(
            f"deployed {r['metric']} drop vs eager fp32",
            h["deployed_metric_drop_vs_eager"],
            targets.metric_drop_allowed(r["metric"], eager_score),
        )
    )
    for p in h["pruning"]:
        if p["macs_ratio"] >= targets.PRUNED_MACS_AT_LEAST:
            checks.append(
                targets.check(
                    f"{p['variant']} ({p['macs_ratio']:.1f}x fewer MACs) p50 vs {p['unpruned']}",
                    p["p50_vs_unpruned"],
                    targets.PRUNED_LATENCY_VS_UNPRUNED,
                )
            )
    return checks
