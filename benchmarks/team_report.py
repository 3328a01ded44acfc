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


def workers_section(r: Mapping[str, Any] | None) -> list[str]:
    """Two datasets changed at once: wall time with two workers vs one
    (results/team_workers.json, benchmarks/team_workers.py)."""
    lines = [
        "Two datasets changed at once, wall time with two workers vs one "
        "(`python -m benchmarks.team_workers`): the team tests' rig (PostgreSQL 15, a Prefect "
        "server on it, a process pool, worker-a and worker-b each in its own checkout, one run "
        "per dataset at a time); X and Y get a new image and one event each; wall time runs "
        "from just before the change to the later run's end (server timestamps).",
        "",
    ]
    if r is None:
        return [*lines, "No results/team_workers.json yet.", ""]
    lines += [
        "| workers | wall s | X and Y overlap s | who ran X, Y | run s | load before |",
        "|---|---|---|---|---|---|",
    ]
    for round_ in r.get("rounds", []):
        runs = round_["runs"]
        lines.append(
            f"| {round_['workers']} | {round_['wall_s']} | {round_['overlap_s']} |"
            f" {', '.join(x['worker'] for x in runs)} |"
            f" {', '.join(str(x['run_s']) for x in runs)} |"
            f" {round_['load_average_before'][0]} |"
        )
    wall = r.get("wall_s", {})
    medians = ", ".join(f"{k} {v['median']}" for k, v in sorted(wall.items()))
    return [
        *lines,
        "",
        f"Median wall s: {medians}; ratio 2 workers / 1 worker: {r.get('wall_ratio_2_vs_1')}. "
        "A negative overlap is the gap between two runs on one worker. On a 2-core machine "
        "each CPU-bound run takes about twice as long beside the other, so two workers remove "
        "mostly that gap, not training time; near 0.5 needs a worker per machine.",
        "",
    ]
