"""``benchmarks/REPORT.md`` and its PNG plots, from whatever is in ``benchmarks/results/``.

Reads every result file that exists (a benchmark that did not run is listed as missing),
puts every target with its measured value first, then one section per benchmark.

    python -m benchmarks.report
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmarks.common import HERE, PLOTS, load_result

REPORT = HERE / "REPORT.md"
SECTIONS = ("inference", "optimum_peer", "training", "pipeline_overhead", "validation_throughput")


# --- pure helpers ------------------------------------------------------------------------


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """A markdown table; cells are formatted with :func:`fmt`."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(c) for c in row) + " |" for row in rows]
    return lines


def fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
            return f"{value:.3g}"
        return f"{value:.4g}"
    return str(value).replace("|", "\\|")


def one_line(text: str, limit: int = 400) -> str:
    """A reason as one markdown line: error output keeps its first lines only."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def met_mark(met: bool | None) -> str:
    return {True: "met", False: "**not met**", None: "not measured"}[met]


def pareto_front(points: Mapping[str, tuple[float, float]], higher_is_better: bool) -> list[str]:
    """Names of the points no other point beats on both latency (lower) and score."""

    def better_or_equal(a: float, b: float) -> bool:
        return a >= b if higher_is_better else a <= b

    front = []
    for name, (lat, score) in points.items():
        dominated = any(
            other != name
            and o_lat <= lat
            and better_or_equal(o_score, score)
            and (o_lat < lat or o_score != score)
            for other, (o_lat, o_score) in points.items()
        )
        if not dominated:
            front.append(name)
    return sorted(front, key=lambda n: points[n][0])


def spread_text(s: Mapping[str, Any] | None, digits: int = 4) -> str:
    """``median [min-max]`` of a :func:`benchmarks.common.spread` record."""
    if not s or not s.get("n"):
        return "n/a"
    if s["n"] == 1:
        return f"{s['median']:.{digits}g}"
    return f"{s['median']:.{digits}g} [{s['min']:.{digits}g}-{s['max']:.{digits}g}]"


# --- plots -------------------------------------------------------------------------------


def pareto_plot(name: str, family: Mapping[str, Any]) -> Path | None:
    """Metric vs batch-1 p50 latency of every model of one family, frontier and winner marked."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    models = family["models"]
    points = {n: (float(m["latency_p50_ms"]), float(m["score"])) for n, m in models.items()}
    front = pareto_front(points, bool(family["higher_is_better"]))
    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=110)
    placed: list[tuple[float, float]] = []
    scores = [s for _, s in points.values()]
    y_span = (max(scores) - min(scores)) or 1.0
    for n, (lat, score) in sorted(points.items(), key=lambda kv: (kv[1][1], kv[1][0])):
        style: dict[str, Any]
        if n == family["winner"]:
            style = {"marker": "*", "s": 220, "color": "tab:green", "zorder": 3}
        elif n == "torch-eager":
            style = {"marker": "s", "s": 70, "color": "tab:red"}
        elif n in family["search"].get("report_only", []):
            style = {"marker": "x", "s": 70, "color": "tab:gray"}
        else:
            style = {"marker": "o", "s": 50, "color": "tab:blue"}
        ax.scatter([lat], [score], **style)
        label = f"{n} (deployed)" if n == family["winner"] else n
        # Labels of points close together are stacked instead of printed over each other.
        near = sum(
            1
            for px, py in placed
            if abs(math.log10(px / lat)) < 0.12 and abs(py - score) < 0.04 * y_span
        )
        placed.append((lat, score))
        ax.annotate(
            label, (lat, score), textcoords="offset points", xytext=(6, 4 + 11 * near), fontsize=8
        )
    fp32 = models.get("fp32")
    max_drop = family["search"].get("max_drop")
    if fp32 is not None and max_drop is not None:
        sign = -1.0 if family["higher_is_better"] else 1.0
        ax.axhline(
            float(fp32["score"]) + sign * float(max_drop),
            color="tab:orange",
            linestyle="--",
            linewidth=1,
            label=(
                f"deployable bound: fp32 {family['metric']} "
                f"{'-' if family['higher_is_better'] else '+'} max_drop"
            ),
        )
    fx = [points[n][0] for n in front]
    fy = [points[n][1] for n in front]
    ax.step(fx, fy, where="post", color="tab:green", alpha=0.4, label="Pareto frontier")
    ax.set_xscale("log")
    ax.margins(x=0.15, y=0.15)  # room for the labels of the outermost points
    ax.set_xlabel("batch-1 p50 latency, ms (log scale; CPU)")
    ax.set_ylabel(f"test {family['metric']}")
    ax.set_title(f"{name} ({family['task']}): {family['metric']} vs latency")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    PLOTS.mkdir(parents=True, exist_ok=True)
    path = PLOTS / f"pareto_{name}.png"
    fig.savefig(path)
    plt.close(fig)
    return path


# --- sections ----------------------------------------------------------------------------


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
    for name in ("optimum_peer", "training", "pipeline_overhead", "validation_throughput"):
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


def inference_section(r: Mapping[str, Any]) -> list[str]:
    lines = [
        "## 1. Inference: PyTorch eager fp32 vs ONNX Runtime fp32 vs every compressed variant",
        "",
        "Per family, the pipeline's stages (through DVC, cached when unchanged) produce every "
        "variant and pick the deployed one; then every model is timed here side by side in "
        "interleaved rounds after a warm-up (batch-1 latency over single test rows, batch-64 "
        "throughput), and scored on the test split. Spread: the lowest and highest of the "
        "per-round medians. Eager size: the state_dict as torch.save writes it.",
        "",
    ]
    for name, fam in r["families"].items():
        h = fam["headline"]
        lines += [
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
        verdicts = fam["search"]["verdicts"]
        rows = []
        for n, m in fam["models"].items():
            rows.append(
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
            )
        lines += table(
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
        if h["pruning"]:
            lines += [
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
                    for p in h["pruning"]
                ],
            )
        for v, u in h["unstructured"].items():
            lines += [
                "",
                f"Unstructured sparsity (`{v}`): p50 {fmt(u['p50_vs_fp32'])}x ORT fp32 -> "
                + (
                    "a speed-up (still never deployed)."
                    if u["gives_speedup"]
                    else "**no speed-up**: the zeros are still multiplied by dense kernels."
                ),
            ]
        levels = fam["search"].get("ort_levels_p50_ms") or {}
        if any(levels.values()):
            names = list(next(v for v in levels.values() if v))
            lines += [
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
                        fam["search"]["ort_level_fastest"].get(v),
                    )
                    for v, lv in levels.items()
                ],
            )
        plot = pareto_plot(name, fam)
        lines += [
            "",
            f"![{name} Pareto chart](plots/{plot.name})"
            if plot
            else "(plot skipped: matplotlib not installed; pip install -e .[bench])",
            "",
        ]
        gpu = fam.get("gpu") or {}
        if "models" in gpu:
            lines += ["GPU:", ""]
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
    for s in r.get("skipped", []):
        lines.append(f"- skipped {s['what']}: {one_line(s['reason'])}")
    return [*lines, ""]


def training_section(r: Mapping[str, Any]) -> list[str]:
    lines = [
        "## 2. Training: Lightning Trainer vs a plain PyTorch loop",
        "",
        "Same network and initial weights, data, batch size, epochs, optimiser, per-epoch "
        "validation, checkpointing and early-stopping check; Lightning exactly as the train "
        "stage runs it. Alternating repeats after a warm-up run per side; times cover the "
        f"whole fit call, set-up included. torch threads: {r.get('torch_threads')}.",
        "",
    ]
    rows = []
    for c in r["comparisons"]:
        for side, s in c["sides"].items():
            rows.append(
                (
                    c["workload"],
                    side,
                    f"{s['epochs']} x {s['train_samples']}",
                    spread_text(s["seconds"]),
                    spread_text(s["samples_per_s"]),
                    s.get("setup_seconds"),
                    s.get("steady_samples_per_s"),
                )
            )
        rows.append(
            (
                c["workload"],
                "**Lightning / plain**",
                "",
                "",
                c["lightning_vs_plain_samples_per_s"],
                "",
                c.get("lightning_vs_plain_steady_samples_per_s"),
            )
        )
    lines += table(
        [
            "workload",
            "side",
            "epochs x samples",
            "seconds",
            "samples/s (whole call)",
            "set-up s",
            "steady samples/s",
        ],
        rows,
    )
    lines += [
        "",
        "Set-up and steady rate come from a one-epoch run beside each full run: steady epoch = "
        "(t(E) - t(1)) / (E - 1), set-up = t(1) - steady epoch.",
    ]
    gpu = r.get("gpu")
    if gpu:
        lines += [
            "",
            f"GPU ({(gpu.get('gpu') or {}).get('name')}): bf16-mixed / fp32 samples/s "
            f"{fmt(gpu['bf16_vs_fp32_samples_per_s'])}; torch.compile / eager "
            f"{fmt(gpu['compiled_vs_eager_samples_per_s'])}.",
        ]
    lines.append("")
    for s in r.get("skipped", []):
        lines.append(f"- skipped {s['what']}: {one_line(s['reason'])}")
    return [*lines, ""]


def overhead_section(r: Mapping[str, Any]) -> list[str]:
    flow, direct = r["flow_seconds"], r["direct_seconds"]
    lines = [
        "## 3. Pipeline overhead: Prefect flow vs the stage functions called directly and "
        "`dvc repro`",
        "",
        f"Default dataset, {'quick' if r['quick'] else 'default'} params, "
        f"{r['repeats']} run(s) per side, torch threads {r.get('threads')}. Flow: "
        f"{spread_text(flow)} s; direct: {spread_text(direct)} s; overhead "
        f"{fmt(r['overhead_seconds'])} s = {fmt(r['overhead_share_of_flow_run'])} of the flow run "
        f"(flow/direct {fmt(r['flow_vs_direct'])}x). `dvc repro` of the same stages from a "
        f"shell: {spread_text(r.get('dvc_repro_seconds') or {})} s (flow/dvc repro "
        f"{fmt(r.get('flow_vs_dvc_repro'))}x). Prefect server start-up (paid once by a "
        f"long-lived server, not per run): {fmt(r['prefect_server_startup_seconds'])} s.",
        "",
    ]
    first_flow, first_direct = r["flow_runs"][0], r["direct_runs"][0]
    lines += table(
        ["stage", "flow s (task + DVC + stage)", "direct s (stage alone)", "overhead s"],
        [
            (
                name,
                first_flow["stages"].get(name),
                first_direct["stages"].get(name),
                r["stage_overhead_seconds"].get(name),
            )
            for name in first_direct["stages"]
        ]
        + [
            (
                "outside stages (snapshot, plan, gate+deploy, artifacts) / deploy",
                first_flow["outside_stages_seconds"],
                first_direct["deploy_seconds"],
                None,
            )
        ],
    )
    start = r.get("process_startup_seconds") or {}
    rerun, cli = r["unchanged_rerun_flow"], r["unchanged_rerun_cli"]
    lines += [
        "",
        "The flow runs each stage in its own process through DVC's API. What that saves "
        "per stage, against `dvc repro` from a shell, is two process starts: `python -m dvc` "
        f"(`dvc version` alone: {fmt(start.get('python_m_dvc_version'))} s) and "
        "`flywheel stage`, whose imports (torch, Lightning, the stage's modules) take "
        f"{fmt(start.get('stage_imports'))} s.",
        "",
        f"Unchanged rerun: flow with the server up {fmt(rerun['seconds'])} s "
        f"(status: {rerun['status']}); `flywheel run` from a shell {fmt(cli['seconds'])} s "
        f"(nothing to do: {fmt(cli['nothing_to_do'])}; Python start-up included; with no "
        "Prefect server configured it answers before starting an ephemeral one).",
        "",
    ]
    return lines


def validation_section(r: Mapping[str, Any]) -> list[str]:
    lines = [
        "## 4. Validation stage throughput",
        "",
        f"{r['rows']:,} manifest rows, {r['bad_share']:.1%} of them bad, 5-expectation suite, "
        f"{r['repeats']} pass(es) after a warm-up: validation (GX checkpoint incl. Data Docs + "
        f"offender collection) {spread_text(r['validation_seconds'])} s = "
        f"**{r['validation_rows_per_s']:,.0f} rows/s**; with the stage's quarantine and "
        f"manifest CSVs {spread_text(r['stage_seconds'])} s = {r['stage_rows_per_s']:,.0f} rows/s.",
        "",
    ]
    lines += table(
        ["pass", "checkpoint s", "collect s", "CSV write s", "rejected rows"],
        [
            (i + 1, p["checkpoint_s"], p["collect_s"], p["write_s"], p["rejected_rows"])
            for i, p in enumerate(r["passes"])
        ],
    )
    alone = r.get("each_expectation_alone_s") or {}
    if alone:
        lines += [
            "",
            "Each expectation alone on the whole table (seconds, the checkpoint's fixed cost "
            f"included; the {r['warmup']['expectations']}-expectation suite on 10,000 rows took "
            f"{fmt(r['warmup']['validation_s'])} s):",
            "",
        ]
        lines += table(["expectation", "seconds"], list(alone.items()))
    return [*lines, ""]


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
    lines = ["## 6. Trigger latency (benchmarks/trigger_latency.py, not run by make bench)", ""]
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


def runs_section(
    runs: Mapping[str, Any] | None, results: Mapping[str, Mapping[str, Any] | None]
) -> list[str]:
    """What the last ``run_all`` did, so a failed benchmark's older figures are not mistaken
    for this run's."""
    if not runs:
        return []
    lines = [
        f"Last `run_all` ({'quick' if runs['quick'] else 'full'}): {runs['seconds']:.0f} s in "
        f"all, finished {runs['finished_at']}.",
        "",
    ]
    lines += table(
        ["benchmark", "status", "seconds", "result file written"],
        [
            (name, r["status"], r["seconds"], (results.get(name) or {}).get("finished_at"))
            for name, r in runs["runs"].items()
        ],
    )
    return [*lines, ""]


def build_report() -> str:
    results = {name: r for name in SECTIONS if (r := load_result(name)) is not None}
    lines = [
        "# Flywheel benchmark report",
        "",
        "Generated by `make bench` (`python -m benchmarks.run_all`); raw figures in "
        "`benchmarks/results/*.json`. Every comparison runs both sides in one process run, "
        "after a warm-up, with repeats. The machine is shared and small: absolute timings are "
        "noisy, ratios taken within one run are what counts.",
        "",
    ]
    quick = [name for name, r in results.items() if r.get("quick")]
    if quick:
        lines += [
            f"**Quick (smoke) run** for: {', '.join(quick)}; figures are indicative only.",
            "",
        ]
    missing = [name for name in SECTIONS if name not in results]
    if missing:
        lines += [f"Missing results (did not run or failed): {', '.join(missing)}.", ""]
    lines += runs_section(load_result("run_all"), {**results, "serving": load_result("serving")})
    if results:
        lines += machine_section(results)
    lines += targets_section(results)
    from benchmarks.peer_report import optimum_section

    renderers = {
        "inference": inference_section,
        "optimum_peer": optimum_section,
        "training": training_section,
        "pipeline_overhead": overhead_section,
        "validation_throughput": validation_section,
    }
    for name, render in renderers.items():
        if name in results:
            lines += render(results[name])
    lines += serving_section(load_result("serving"))
    from benchmarks.protocols_report import protocols_section

    lines += protocols_section(load_result("serving_protocols"))
    lines += trigger_section(load_result("trigger_latency"))
    from benchmarks.team_report import team_section

    lines += team_section(load_result("team"))
    return "\n".join(lines).rstrip() + "\n"


def main() -> None:
    REPORT.write_text(build_report())
    print(f"written {REPORT.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
