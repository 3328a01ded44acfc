"""The serving and trigger-latency sections of REPORT.md."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from benchmarks.report_format import table


def serving_section(r: Mapping[str, Any] | None) -> list[str]:
    lines = ["## 5. Serving (benchmarks/serving_bench.py)", ""]
    if r is None:
        return [*lines, "No results/serving.json: the serving benchmark did not run.", ""]
    lines += [
        f"Model: {r.get('model')}; {r.get('requests_per_level')} requests per concurrency "
        f"level after {r.get('warmup_per_level')} warm-up; quick: {r.get('quick')}.",
        "",
    ]
    rows = []
    for server, levels in (r.get("servers") or {}).items():
        for level, s in levels.items():
            rows.append(
                (
                    server,
                    level,
                    s.get("req_per_s"),
                    s.get("p50_ms"),
                    s.get("p99_ms"),
                    s.get("errors"),
                    s.get("outside_runtime_share"),
                )
            )
    if rows:
        lines += table(
            [
                "server",
                "concurrency",
                "req/s",
                "p50 ms",
                "p99 ms",
                "errors",
                "share outside runtime",
            ],
            rows,
        )
    if r.get("summary"):
        lines += ["", f"Summary: `{json.dumps(r['summary'])}`"]
    return [*lines, ""]


def trigger_section(r: Mapping[str, Any] | None) -> list[str]:
    lines = ["## 6. Trigger latency (benchmarks/trigger_latency.py)", ""]
    if r is None:
        return [*lines, "No results/trigger_latency.json yet.", ""]
    median = r.get("median")
    if isinstance(median, dict) and median:
        # The other engineer's file decides its fields; show its medians, the rest as JSON.
        lines += [
            f"Median over {r.get('repeats', '?')} data changes (profile {r.get('profile')}):",
            "",
        ]
        lines += table(list(median), [list(median.values())])
        lines.append("")
    shown = {k: v for k, v in r.items() if k not in ("machine", "runs", "raw", "samples")}
    return [*lines, "```json", json.dumps(shown, indent=2)[:3000], "```", ""]
