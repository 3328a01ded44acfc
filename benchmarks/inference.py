"""Inference: PyTorch eager fp32 vs ONNX Runtime fp32 vs every compressed variant, per family.

For the default params and every ``examples/<family>/params.yaml`` whose family module and
dataset exist, the pipeline's own stages (validate .. evaluate, through DVC, so unchanged
stages are cached) bring the family's workspace up to date: that is the compression search
that picks the deployed variant. Then, in this one process, every model is timed side by
side in interleaved rounds (batch-1 latency, batch-64 throughput) with warm-up, and scored
on the test split. A family whose module, dataset or suite is missing is skipped, with the
reason in the results.

    python -m benchmarks.inference [--quick] [--families default,text]
"""

from __future__ import annotations

import argparse
import json
import time
import traceback
from typing import Any

from benchmarks.common import (
    PROJECT,
    load_result,
    skip,
    write_result,
)
from benchmarks.inference_families import bring_up_to_date, discover, unavailable
from benchmarks.inference_figures import family_targets, headline
from benchmarks.inference_gpu import measure_gpu
from benchmarks.inference_timing import FULL, QUICK, Plan, count_macs, time_all
from benchmarks.machine import machine_info, no_gpu_reason


def measure(ws: Any, plan: Plan) -> dict[str, Any]:
    """Every model of the workspace side by side, on CPU, in this process."""
    from flywheel.core.ort import CPU
    from flywheel.datasets.arrays import load_split
    from flywheel.families import get_family
    from flywheel.measure.runners import onnx_runner, output_metrics
    from flywheel.nn.checkpoint import load_network
    from flywheel.nn.eager import state_dict_bytes, torch_runner, torch_threads

    params, layout = ws.params, ws.layout
    family = get_family(params.task)
    spec = family.load_spec(layout.preprocessing_spec)
    x, y = load_split(layout.split_file("test"))
    report = json.loads(layout.evaluation_report.read_text())
    threads = params.evaluate.intra_op_threads
    net = load_network(layout.checkpoint, params, spec)
    runners: dict[str, Any] = {"torch-eager": torch_runner(net)}
    sizes = {"torch-eager": state_dict_bytes(net)}
    for v in report["variants"]:
        runners[v] = onnx_runner(layout.variant_file(v), threads, [CPU])[0]
        sizes[v] = layout.variant_file(v).stat().st_size
    metric = params.gate.metric
    with torch_threads(threads):
        scores = {
            n: output_metrics(r, x, y, plan.batch, params.is_regression) for n, r in runners.items()
        }
        timing = time_all(runners, x, plan)
    models = {
        n: {
            "runtime": "pytorch eager" if n == "torch-eager" else "onnxruntime cpu",
            "score": scores[n][metric],
            "metrics": scores[n],
            "size_bytes": sizes[n],
            **timing[n],
        }
        for n in runners
    }
    result: dict[str, Any] = {
        "task": params.task,
        "metric": metric,
        "higher_is_better": params.higher_is_better,
        "test_samples": len(x),
        "intra_op_threads": threads,
        "winner": report["winner"],
        "macs_fp32": count_macs(net, family.example_input(spec)),
        "models": models,
        "search": _search(report),
    }
    result["headline"] = headline(result)
    result["targets"] = family_targets(result)
    return result


def _search(report: dict[str, Any]) -> dict[str, Any]:
    """What the compression search decided, per variant, from the evaluation report."""
    return {
        "rule": report.get("rule"),
        "max_drop": report.get("max_drop"),
        "verdicts": {v: r.get("verdict") for v, r in report["variants"].items()},
        "skipped": report.get("skipped", {}),
        "ort_level_fastest": {v: r.get("ort_level_fastest") for v, r in report["variants"].items()},
        "ort_levels_p50_ms": {v: r.get("ort_levels_p50_ms") for v, r in report["variants"].items()},
        "macs_ratio": {
            v: r["macs_ratio"] for v, r in report["variants"].items() if "macs_ratio" in r
        },
        "report_only": [v for v, r in report["variants"].items() if r.get("report_only")],
    }


def _kept(families: list[str] | None, quick: bool) -> dict[str, Any]:
    """The results to start from: empty, or when re-measuring some families, the others'
    figures from the last run."""
    out: dict[str, Any] = {"quick": quick, "families": {}, "skipped": []}
    previous = load_result("inference")
    if families and previous and previous.get("quick") == quick:
        # Re-measuring some families keeps the others' figures from the last run, each with
        # the machine it was measured on (the file's machine line is this run's).
        out["families"] = {
            k: {**v, "machine": v.get("machine") or previous.get("machine")}
            for k, v in previous["families"].items()
            if k not in families
        }
        out["skipped"] = [
            s
            for s in previous["skipped"]
            if s["what"] not in families and not s["what"].startswith("GPU")
        ]
    return out


def run(
    quick: bool,
    families: list[str] | None = None,
    budget_s: float = float("inf"),
    started: float | None = None,
) -> dict[str, Any]:
    """Every available family; results are written after each one, so a run stopped by its
    time limit keeps what it measured. No family starts once ``budget_s`` has passed."""
    plan = QUICK if quick else FULL
    started = time.perf_counter() if started is None else started
    out = _kept(families, quick)
    gpu_reason = no_gpu_reason()
    for entry in discover():
        if families and entry.name not in families:
            continue
        reason = unavailable(entry)
        if reason is None and quick and not families and entry.name != "default":
            reason = "--quick measures the default family only"
        if reason is None and time.perf_counter() - started > budget_s:
            reason = f"the benchmark's time budget ({budget_s:.0f} s) was used up"
        if reason:
            print(f"inference: skip {entry.name}: {reason}")
            out["skipped"].append(skip(entry.name, reason))
            continue
        print(f"inference: {entry.name} ({entry.params_file.relative_to(PROJECT)})")
        family_started = time.perf_counter()
        try:
            ws, stages = bring_up_to_date(entry)
            result = measure(ws, plan)
            result["gpu"] = measure_gpu(ws, plan) if gpu_reason is None else skip("gpu", gpu_reason)
        except Exception as err:  # one broken family must not hide the others' results
            traceback.print_exc()
            out["skipped"].append(skip(entry.name, f"failed: {type(err).__name__}: {err}"[:2000]))
            continue
        result.update(
            params_file=str(entry.params_file.relative_to(PROJECT)),
            stages=stages,
            seconds=round(time.perf_counter() - family_started, 1),
            machine=machine_info(),
        )
        out["families"][entry.name] = result
        write_result("inference", out, started)
        h = result["headline"]
        print(
            f"  winner {h['deployed']}: p50 {h['deployed_p50_vs_eager']}x eager, "
            f"size {h['deployed_size_vs_eager']}x, drop {h['deployed_metric_drop_vs_eager']}"
        )
    if gpu_reason:
        out["skipped"].append(
            skip("GPU inference (ORT CUDA EP vs eager, share of peak)", gpu_reason)
        )
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short timings, for a smoke run")
    parser.add_argument("--families", help="comma-separated names (default, or example folders)")
    parser.add_argument(
        "--budget-s",
        type=float,
        default=1200.0,
        help="start no further family after this many seconds (default 1200)",
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    families = args.families.split(",") if args.families else None
    path = write_result("inference", run(args.quick, families, args.budget_s, started), started)
    print(f"written {path.relative_to(PROJECT)}")


if __name__ == "__main__":
    main()
