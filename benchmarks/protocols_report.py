"""The serving-protocols benchmark's figures against the issue's targets, and its section
of ``REPORT.md`` (imported by :func:`benchmarks.report.build_report` when it runs)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from benchmarks.common import ratio


def summary(servers: dict[str, dict[str, Any]]) -> dict[str, Any]:
    floor_p50 = servers["floor"]["1"]["p50_ms"]
    arms = [name for name in servers if name.startswith("bentoml")]
    bento = max(arms, key=lambda arm: servers[arm]["32"]["req_per_s"])
    out: dict[str, Any] = {"best_bentoml_c32": bento}
    for route in ("flywheel v1", "flywheel v2"):
        key = route.split()[1]
        c1 = servers[route]["1"]
        out[f"{key}_p50_vs_floor_c1"] = ratio(c1["p50_ms"], floor_p50, 3)
        # Without the model's own time: what the server adds to a request beyond the floor.
        outside = c1["p50_ms"] - (c1["runtime_mean_ms"] or 0.0) if c1["p50_ms"] else None
        out[f"{key}_p50_minus_ort_vs_floor_c1"] = ratio(outside, floor_p50, 3)
        out[f"{key}_rps_vs_bentoml_c32"] = ratio(
            servers[route]["32"]["req_per_s"], servers[bento]["32"]["req_per_s"], 3
        )
        out[f"{key}_p99_vs_bentoml_c32"] = ratio(
            servers[route]["32"]["p99_ms"], servers[bento]["32"]["p99_ms"], 3
        )
    return out


def targets(models: dict[str, Any]) -> list[dict[str, Any]]:
    from benchmarks import targets as t

    rows = []
    for model, r in models.items():
        s = r["summary"]
        for key in ("v1", "v2"):
            rows.append(
                t.check(f"{model} {key}: c=1 p50 / floor p50", s[f"{key}_p50_vs_floor_c1"], 1.5)
            )
            rows.append(
                t.check(
                    f"{model} {key}: c=32 req/s / BentoML's",
                    s[f"{key}_rps_vs_bentoml_c32"],
                    2.0,
                    at_most=False,
                )
            )
            rows.append(
                t.check(f"{model} {key}: c=32 p99 / BentoML's", s[f"{key}_p99_vs_bentoml_c32"], 1.0)
            )
    return rows


def protocols_section(r: Mapping[str, Any] | None) -> list[str]:
    lines = ["## Serving protocols: HTTP floor, Flywheel /v1 and /v2, BentoML", ""]
    if r is None:
        return [
            *lines,
            "No results/serving_protocols.json yet (`python -m benchmarks.serving_protocols`).",
            "",
        ]
    venv = r.get("bentoml_venv", {})
    lines += [
        "One run, one machine, same client (closed-loop raw asyncio, one instance a request), "
        "servers interleaved per concurrency level. floor: a constant POST route on the "
        "Flywheel app itself; BentoML 1.4 in its own environment "
        f"({venv.get('path')}) serving the same ONNX file with adaptive batching, default "
        f"settings and workers=2. quick: {r.get('quick')}.",
        "",
    ]
    for model, m in r.get("models", {}).items():
        lines += model_lines(model, m)
    lines += targets_lines(r.get("targets", []))
    for route, p in (r.get("profile") or {}).items():
        lines += profile_lines(route, p)
    return lines


def model_lines(model: str, m: Mapping[str, Any]) -> list[str]:
    """Every server at every concurrency level for one model, then the model's summary."""
    from benchmarks.report_format import table

    total, warmup, _ = m["counts"]
    rows = [
        (
            name,
            c,
            s["req_per_s"],
            s["p50_ms"],
            s["p99_ms"],
            s["errors"],
            s["outside_runtime_share"],
        )
        for name, levels in m["servers"].items()
        for c, s in levels.items()
    ]
    header = [
        "server",
        "concurrency",
        "req/s",
        "p50 ms",
        "p99 ms",
        "non-200",
        "share outside ORT",
    ]
    return [
        f"**{model}** ({total} requests per level after {warmup} warm-up):",
        "",
        *table(header, rows),
        "",
        f"Summary: `{json.dumps(summary(m['servers']))}`",
        "",
    ]


def targets_lines(checked: list[Mapping[str, Any]]) -> list[str]:
    from benchmarks.report_format import fmt, met_mark, table

    rows = [(t["target"], fmt(t["measured"]), t["goal"], met_mark(t["met"])) for t in checked]
    return ["Targets:", "", *table(["target", "measured", "goal", "met"], rows), ""]


def profile_lines(route: str, p: Mapping[str, Any]) -> list[str]:
    """Where one request's time goes on the server, or why the profile is missing."""
    from benchmarks.report_format import table

    if "areas_us_per_request" not in p:
        return [f"Profile {route}: {p.get('error')}", ""]
    return [
        f"Profile of one {route} request (default model, c=1, cProfile on the server's "
        f"event-loop thread, {p['requests']} requests; busy "
        f"{p['event_loop_busy_us_per_request']} us a request; client p50 "
        f"{p['client']['p50_ms']} ms, ONNX Runtime {p['client']['runtime_mean_ms']} ms):",
        "",
        *table(["area", "us per request"], list(p["areas_us_per_request"].items())),
        "",
        *table(
            ["function (tottime)", "us per request"],
            [(f["function"], f["us"]) for f in p["top_functions_us_per_request"][:10]],
        ),
        "",
    ]
