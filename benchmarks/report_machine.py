"""REPORT.md's machine line and section, and the targets table that opens it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from benchmarks.report_format import met_mark, table


def machine_line(machine: Mapping[str, Any]) -> str:
    """One line: the CPU, its ISA flags (INT8 speed depends on them) and the load then."""
    cpu = machine["cpu"]
    on = ", ".join(f for f, v in cpu["flags"].items() if v) or "none"
    off = ", ".join(f for f, v in cpu["flags"].items() if not v) or "none"
    return (
        f"Machine: {cpu['model']}, {cpu['cores_usable']} usable cores; ISA flags: {on} "
        f"(absent: {off}); INT8 dot-product instructions (VNNI/AMX): "
        f"{'yes' if cpu.get('int8_dot_product') else 'no'}; load average "
        f"{machine.get('load_average_1_5_15')}."
    )


def machine_section(results: Mapping[str, Mapping[str, Any]]) -> list[str]:
    first = next(iter(results.values()))
    m = first["machine"]
    cpu = m["cpu"]
    flags = ", ".join(f for f, on in cpu["flags"].items() if on) or "none"
    missing = ", ".join(f for f, on in cpu["flags"].items() if not on)
    gpu = m.get("gpu")
    return [
        "## Machine",
        "",
        f"- CPU: {cpu['model']}, {cpu['cores_usable']} usable cores; ISA flags: {flags}"
        + (f" (absent: {missing})" if missing else ""),
        f"- INT8 dot-product instructions (VNNI/AMX): "
        f"{'yes' if cpu.get('int8_dot_product') else 'no'}",
        f"- memory: {m.get('memory_gib')} GiB; GPU: "
        + (f"{gpu['name']} ({gpu['memory_gib']} GiB, CUDA {gpu['cuda']})" if gpu else "none"),
        f"- ONNX Runtime providers: {', '.join(m['onnxruntime_providers'])}",
        f"- Python {m['python']} on {m['platform']}; commit {m.get('git_commit')}",
        "- libraries: " + ", ".join(f"{k} {v}" for k, v in m["libraries"].items()),
        "- load average (1/5/15 min) when each benchmark finished: "
        + "; ".join(
            f"{name} {r['machine'].get('load_average_1_5_15')}" for name, r in results.items()
        ),
        *_mixed_machines_note(results),
        "",
    ]


def _mixed_machines_note(results: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """A line when the results were measured on CPUs with different ISA flags (a family
    re-measured on another machine keeps the others' figures with their machine)."""
    machines = [r["machine"] for r in results.values()]
    inference = results.get("inference") or {}
    machines += [f["machine"] for f in inference.get("families", {}).values() if f.get("machine")]
    if len({tuple(sorted(m["cpu"]["flags"].items())) for m in machines}) < 2:
        return []
    return [
        "- **these results come from more than one machine** (different ISA flags): each "
        "inference family and the Optimum peer name the machine they were measured on"
    ]


def targets_section(results: Mapping[str, Mapping[str, Any]]) -> list[str]:
    rows = []
    inference = results.get("inference")
    if inference:
        for fam, r in inference["families"].items():
            rows += [(f"{fam}: {t['target']}", t) for t in r.get("targets", [])]
    for name in (
        "optimum_peer",
        "training",
        "pipeline_overhead",
        "validation_throughput",
        "serving_protocols",
        "trigger_latency",
    ):
        r = results.get(name)
        if r:
            rows += [(t["target"], t) for t in r.get("targets", [])]
    lines = ["## Targets", ""]
    if not rows:
        return [*lines, "No results yet.", ""]
    lines += table(
        ["target", "measured", "goal", "verdict"],
        [(name, t["measured"], t["goal"], met_mark(t["met"])) for name, t in rows],
    )
    return [*lines, ""]
