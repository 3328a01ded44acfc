"""The Optimum peer's section of ``REPORT.md``: the side-by-side table, the issue's targets
(measured, goal, met or not) and the machine line, since INT8 speed depends on the ISA.

Imported by :func:`benchmarks.report.build_report` when it runs (it uses the report's
table helpers, so it cannot be imported at the top of that module)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from benchmarks.report_format import met_mark, one_line, spread_text, table
from benchmarks.report_machine import machine_line


def optimum_section(r: Mapping[str, Any]) -> list[str]:
    lines = ["## Optimum peer: Flywheel's deployed MiniLM vs Hugging Face Optimum", ""]
    if "models" not in r:
        for s in r.get("skipped", []):
            lines.append(f"- skipped {s['what']}: {one_line(s['reason'])}")
        return [*lines, ""]
    preset, versions = r["preset"], r["optimum"]["versions"]
    lines += [
        "The sentiment example's fine-tuned encoder, written in Hugging Face format, exported "
        "by Optimum (" + ", ".join(f"{k} {v}" for k, v in versions.items()) + ", its own "
        f"virtual environment), optimised by `ORTOptimizer` at O3 and quantized by "
        f"`ORTQuantizer` with the **{preset['name']}** dynamic preset ({preset['reason']}), "
        "per-channel as the preset defines it and per-tensor. Every model is timed in this "
        f"one process with {r['intra_op_threads']} intra-op thread(s), interleaved, and "
        f"scored on the same {r['test_samples']} test rows (padded to "
        f"{r['test_width_tokens']} tokens). Optimum's graph ends at the encoder's hidden "
        "states: the same masked mean pooling and head give its logits (numpy).",
        "",
        machine_line(r["machine"]),
        "",
    ]
    rows = []
    for n, m in r["models"].items():
        name = f"**{n}** (deployed)" if n == r["deployed"] else n
        rows.append(
            (
                name,
                m["side"],
                m["score"],
                round(m["size_bytes"] / 2**20, 1),
                m["latency_p50_ms"],
                spread_text(m["latency_round_medians_ms"]),
                m["latency_p99_ms"],
                m.get("cpu_latency_p50_ms"),
                m["throughput_per_s"],
            )
        )
    header = ["model", "side", "accuracy", "size MiB", "p50 ms", "p50 spread", "p99 ms"]
    lines += table([*header, "on-CPU p50 ms", "rows/s @64"], rows)
    lines += [
        "",
        "p50 spread: the lowest and highest per-round medians. On-CPU p50: the calling "
        "thread's CPU time per batch-1 call, which leaves out time spent waiting for a core "
        "on this shared machine (the last target row uses it as a cross-check).",
    ]
    lines += ["", "Issue 18 targets, from this run:", ""]
    lines += table(
        ["target", "measured", "goal", "verdict"],
        [(t["target"], t["measured"], t["goal"], met_mark(t["met"])) for t in r["targets"]],
    )
    return [*lines, ""]
