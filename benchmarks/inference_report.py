"""The inference section of REPORT.md (benchmarks/inference.py's results)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from benchmarks.report_format import fmt, one_line, spread_text, table
from benchmarks.report_machine import machine_line
from benchmarks.report_plots import pareto_plot

INTRO = [
    "## 1. Inference: PyTorch eager fp32 vs ONNX Runtime fp32 vs every compressed variant",
    "",
    "Per family, the pipeline's stages (through DVC, cached when unchanged) produce every "
    "variant and pick the deployed one; then every model is timed here side by side in "
    "interleaved rounds after a warm-up (batch-1 latency over single test rows, batch-64 "
    "throughput), and scored on the test split. Spread: the lowest and highest of the "
    "per-round medians. Eager size: the state_dict as torch.save writes it.",
    "",
]


def inference_section(r: Mapping[str, Any]) -> list[str]:
    lines = list(INTRO)
    for name, fam in r["families"].items():
        lines += family_lines(name, fam)
    for s in r.get("skipped", []):
        lines.append(f"- skipped {s['what']}: {one_line(s['reason'])}")
    return [*lines, ""]


def family_lines(name: str, fam: Mapping[str, Any]) -> list[str]:
    """One family's subsection: headline, every model, then the search's side findings."""
    h = fam["headline"]
    return [
        *headline_lines(name, fam),
        *models_lines(fam),
        *pruning_lines(h["pruning"]),
        *unstructured_lines(h["unstructured"]),
        *ort_levels_lines(fam["search"]),
        *plot_lines(name, fam),
        *gpu_lines(fam.get("gpu") or {}),
    ]


def headline_lines(name: str, fam: Mapping[str, Any]) -> list[str]:
    h = fam["headline"]
    lines = [
        f"### {name}: {fam['task']} ({fam['params_file']})",
        "",
        f"Deployed: **{h['deployed']}**; batch-1 p50 {fmt(h['deployed_p50_vs_eager'])}x "
        f"eager fp32 (ORT fp32 alone: {fmt(h['ort_fp32_p50_vs_eager'])}x), size "
        f"{fmt(h['deployed_size_vs_eager'])}x eager, {fam['metric']} drop vs eager "
        f"{fmt(h['deployed_metric_drop_vs_eager'])}, batch-64 throughput "
        f"{fmt(h['deployed_throughput_vs_eager'])}x eager. Test samples: "
        f"{fam['test_samples']}; threads: {fam['intra_op_threads']}.",
        "",
    ]
    if fam.get("machine"):
        lines += [machine_line(fam["machine"]), ""]
    return lines


def models_lines(fam: Mapping[str, Any]) -> list[str]:
    """Every model of the family in one table (the deployed one in bold), then the variants
    the search skipped."""
    verdicts = fam["search"]["verdicts"]
    rows = [
        (
            ("**" + n + "**") if n == fam["winner"] else n,
            m["runtime"],
            m["score"],
            round(m["size_bytes"] / 1024, 1),
            m["latency_p50_ms"],
            spread_text(m["latency_round_medians_ms"]),
            m["latency_p99_ms"],
            m["throughput_per_s"],
            verdicts.get(n, "baseline" if n == "torch-eager" else ""),
        )
        for n, m in fam["models"].items()
    ]
    lines = table(
        [
            "model",
            "runtime",
            fam["metric"],
            "size KB",
            "p50 ms",
            "p50 spread",
            "p99 ms",
            "rows/s @64",
            "why (compression search)",
        ],
        rows,
    )
    lines.append("")
    skipped = fam["search"].get("skipped") or {}
    for v, reason in skipped.items():
        lines.append(f"- variant `{v}` skipped: {reason}")
    return lines


def pruning_lines(pruning: list[Mapping[str, Any]]) -> list[str]:
    if not pruning:
        return []
    lines = [
        "",
        "Structured pruning against the unpruned variant of the same precision:",
        "",
    ]
    lines += table(
        ["variant", "vs", "MACs fewer", "p50 ratio", "throughput ratio"],
        [
            (
                p["variant"],
                p["unpruned"],
                f"{p['macs_ratio']:.2f}x",
                p["p50_vs_unpruned"],
                p["throughput_vs_unpruned"],
            )
            for p in pruning
        ],
    )
    return lines


def unstructured_lines(unstructured: Mapping[str, Mapping[str, Any]]) -> list[str]:
    lines: list[str] = []
    for v, u in unstructured.items():
        lines += [
            "",
            f"Unstructured sparsity (`{v}`): p50 {fmt(u['p50_vs_fp32'])}x ORT fp32 -> "
            + (
                "a speed-up (still never deployed)."
                if u["gives_speedup"]
                else "**no speed-up**: the zeros are still multiplied by dense kernels."
            ),
        ]
    return lines


def ort_levels_lines(search: Mapping[str, Any]) -> list[str]:
    levels = search.get("ort_levels_p50_ms") or {}
    if not any(levels.values()):
        return []
    names = list(next(v for v in levels.values() if v))
    lines = [
        "",
        "ONNX Runtime graph optimisation levels (batch-1 p50 ms, compress stage):",
        "",
    ]
    lines += table(
        ["variant", *names, "fastest"],
        [
            (
                v,
                *[(lv or {}).get(k) for k in names],
                search["ort_level_fastest"].get(v),
            )
            for v, lv in levels.items()
        ],
    )
    return lines


def plot_lines(name: str, fam: Mapping[str, Any]) -> list[str]:
    plot = pareto_plot(name, fam)
    return [
        "",
        f"![{name} Pareto chart](plots/{plot.name})"
        if plot
        else "(plot skipped: matplotlib not installed; pip install -e .[bench])",
        "",
    ]


def gpu_lines(gpu: Mapping[str, Any]) -> list[str]:
    if "models" not in gpu:
        return []
    lines = ["GPU:", ""]
    lines += table(
        ["model", "p50 ms", "rows/s @64", "share of peak", "note"],
        [
            (
                n,
                g["latency_p50_ms"],
                g["throughput_per_s"],
                g.get("share_of_peak"),
                g.get("peak_note"),
            )
            for n, g in gpu["models"].items()
        ],
    )
    lines.append("")
    return lines
