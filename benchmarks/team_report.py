"""The team-mode section of REPORT.md, from results/team.json (benchmarks/team.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def team_section(r: Mapping[str, Any] | None) -> list[str]:
    lines = ["## 7. Team mode (benchmarks/team.py, not run by make bench)", ""]
    if r is None:
        return [*lines, "No results/team.json yet.", ""]
    latency = r.get("latency") or {}
    if latency:
        lines += [
            f"Event emitted -> flow run created by the trigger ({r.get('events')} events one"
            " at a time, server side, no worker), and the server's start to healthy:",
            "",
            "| database | median s | p75 s | max s | server healthy after s |",
            "|---|---|---|---|---|",
        ]
        for db, f in latency.items():
            s = f["event_to_run_s"]
            lines.append(
                f"| {db} | {s['median']:.2f} | {s['p75']:.2f} | {s['max']:.2f} |"
                f" {f['server_healthy_s']} |"
            )
        lines.append("")
    for key, title in (
        ("ddp", "DDP, 1 thread per process (OMP_NUM_THREADS=1)"),
        ("ddp_default_threads", "DDP vs a single process on torch's default threads"),
    ):
        ddp = r.get(key)
        if not ddp:
            continue
        lines += [
            f"{title}, digits CNN, {r.get('epochs')} epochs, same seed and global batch:",
            "",
            "| processes | stage wall s | fit s | samples/s | test accuracy |",
            "|---|---|---|---|---|",
        ]
        for name in ("1-process", "2-process"):
            f = ddp[name]
            lines.append(
                f"| {f['processes']} | {f['stage_wall_s']} | {f['fit_s']} |"
                f" {f['samples_per_s']} | {f['test_accuracy']} |"
            )
        lines += ["", f"samples/s ratio 2 vs 1: {ddp['samples_per_s_ratio_2_vs_1']}", ""]
    for note in (r.get("notes") or {}).values():
        if isinstance(note, str):
            lines.append(f"- {note}")
    return [*lines, ""]
