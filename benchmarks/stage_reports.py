"""The training, pipeline-overhead and validation sections of REPORT.md."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from benchmarks.report_format import fmt, one_line, spread_text, table


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
        [row for c in r["comparisons"] for row in comparison_rows(c)],
    )
    lines += [
        "",
        "Set-up and steady rate come from a one-epoch run beside each full run: steady epoch = "
        "(t(E) - t(1)) / (E - 1), set-up = t(1) - steady epoch.",
    ]
    lines += training_gpu_lines(r.get("gpu"))
    lines.append("")
    for s in r.get("skipped", []):
        lines.append(f"- skipped {s['what']}: {one_line(s['reason'])}")
    return [*lines, ""]


def comparison_rows(c: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """One row per side of one workload, then the Lightning / plain ratio row."""
    rows: list[tuple[Any, ...]] = [
        (
            c["workload"],
            side,
            f"{s['epochs']} x {s['train_samples']}",
            spread_text(s["seconds"]),
            spread_text(s["samples_per_s"]),
            s.get("setup_seconds"),
            s.get("steady_samples_per_s"),
        )
        for side, s in c["sides"].items()
    ]
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
    return rows


def training_gpu_lines(gpu: Mapping[str, Any] | None) -> list[str]:
    if not gpu:
        return []
    return [
        "",
        f"GPU ({(gpu.get('gpu') or {}).get('name')}): bf16-mixed / fp32 samples/s "
        f"{fmt(gpu['bf16_vs_fp32_samples_per_s'])}; torch.compile / eager "
        f"{fmt(gpu['compiled_vs_eager_samples_per_s'])}.",
    ]


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
