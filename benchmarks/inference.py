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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import targets
from benchmarks.common import (
    PROJECT,
    load_result,
    percentile,
    ratio,
    skip,
    spread,
    write_result,
)
from benchmarks.machine import gpu_info, machine_info, no_gpu_reason

STAGE_RETRIES = 30  # another engineer's DVC run may hold the repository lock
STAGE_RETRY_WAIT_S = 10.0


@dataclass(frozen=True)
class Entry:
    name: str
    params_file: Path


@dataclass(frozen=True)
class Plan:
    warmup: int
    rounds: int
    latency_budget_s: float
    batch_budget_s: float
    max_latency_runs: int
    max_batch_runs: int
    batch: int = 64


FULL = Plan(warmup=30, rounds=10, latency_budget_s=30.0, batch_budget_s=20.0,
            max_latency_runs=2000, max_batch_runs=200)  # fmt: skip
QUICK = Plan(warmup=10, rounds=4, latency_budget_s=6.0, batch_budget_s=4.0,
             max_latency_runs=300, max_batch_runs=30)  # fmt: skip


def discover(project: Path = PROJECT) -> list[Entry]:
    """The default params, then every example folder's params, in name order."""
    entries = [Entry("default", project / "params.yaml")]
    entries += [
        Entry(p.parent.name, p) for p in sorted((project / "examples").glob("*/params.yaml"))
    ]
    return entries


def unavailable(entry: Entry, project: Path = PROJECT) -> str | None:
    """Why ``entry`` cannot run here (family module, dataset or suite missing), or None."""
    from flywheel.core.config import load_params
    from flywheel.core.errors import ConfigError
    from flywheel.families import get_family
    from flywheel.stages.validate.suite import suite_path

    try:
        params = load_params(entry.params_file)
    except ConfigError as err:
        return f"params do not load: {err}"
    try:
        get_family(params.task)
    except ImportError as err:
        return f"family {params.task!r} is not available: {err}"
    data = params.data.path if params.data.path.is_absolute() else project / params.data.path
    if not data.exists():
        return f"dataset {data} is absent"
    from flywheel.core.layout import Layout

    suite = suite_path(Layout.from_params(params, project), params.validate_.suite)
    if not suite.is_file():
        return f"suite {suite.name} not generated (flywheel expectations init --params ...)"
    return None


def bring_up_to_date(entry: Entry) -> tuple[Any, dict[str, Any]]:
    """The family's workspace with every stage reproduced (or cached) through DVC."""
    from flywheel.core.workspace import open_workspace
    from flywheel.pipeline import dvc, steps
    from flywheel.stages import NAMES

    ws = open_workspace(entry.params_file, PROJECT)
    stages: dict[str, Any] = {}
    for stage in NAMES:
        for attempt in range(STAGE_RETRIES):
            try:
                run = steps.reproduce(ws, stage)
                break
            except dvc.DvcBusy:
                # Someone else's run of the same workspace holds DVC's repository lock or an
                # output's read/write lock: wait for it. Any other failure is real.
                if attempt == STAGE_RETRIES - 1:
                    raise
                time.sleep(STAGE_RETRY_WAIT_S)
        stages[stage] = {"ran": run.ran, "seconds": run.seconds}
        print(f"  {entry.name}: {stage} {'ran' if run.ran else 'cached'} {run.seconds}s")
    return ws, stages


def _estimate(run: Any, batch: np.ndarray, calls: int = 3) -> float:
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        run(batch)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def run_counts(per_call_s: dict[str, float], budget_s: float, lo: int, hi: int) -> int:
    """Calls per runner so that all runners together fit ``budget_s``, within [lo, hi]."""
    total = sum(per_call_s.values())
    return int(min(hi, max(lo, budget_s / max(total, 1e-9))))


def timing_stats(samples: Any, batch: int) -> dict[str, Any]:
    """Latency percentiles over all calls, and per-round medians/throughputs as the spread."""
    latency = samples.flat_latency()
    per_round = [float(np.median(r)) for r in samples.latency_ms if r]
    batch_rounds = [batch * 1000.0 / float(np.median(r)) for r in samples.batch_ms if r]
    return {
        "latency_p50_ms": round(percentile(latency, 50), 5),
        "latency_p99_ms": round(percentile(latency, 99), 5),
        "latency_round_medians_ms": spread(per_round),
        "latency_calls": len(latency),
        "throughput_per_s": round(batch * 1000.0 / float(np.median(samples.flat_batch())), 1),
        "throughput_rounds_per_s": spread(batch_rounds),
        "batch_calls": len(samples.flat_batch()),
    }


def time_all(runners: dict[str, Any], x: np.ndarray, plan: Plan) -> dict[str, Any]:
    from flywheel.measure.timing import TimingPlan, full_batch, time_interleaved

    one = np.ascontiguousarray(x[:1])
    big = full_batch(x, plan.batch)
    per_call = {n: _estimate(r, one) for n, r in runners.items()}
    per_batch = {n: _estimate(r, big) for n, r in runners.items()}
    latency_runs = run_counts(per_call, plan.latency_budget_s, 100, plan.max_latency_runs)
    batch_runs = run_counts(per_batch, plan.batch_budget_s, 10, plan.max_batch_runs)
    timing = TimingPlan(
        warmup=plan.warmup,
        latency_runs=latency_runs,
        batch=plan.batch,
        batch_runs=batch_runs,
        rounds=plan.rounds,
    )
    samples = time_interleaved(runners, x, timing)
    return {n: timing_stats(s, plan.batch) for n, s in samples.items()}


def _macs(net: Any, example: Any) -> int | None:
    try:
        import torch_pruning as tp

        macs, _ = tp.utils.count_ops_and_params(net, example)
        return int(macs)
    except Exception:  # counting is informative only; some graphs defeat the tracer
        return None


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
        "macs_fp32": _macs(net, family.example_input(spec)),
        "models": models,
        "search": {
            "rule": report.get("rule"),
            "max_drop": report.get("max_drop"),
            "verdicts": {v: r.get("verdict") for v, r in report["variants"].items()},
            "skipped": report.get("skipped", {}),
            "ort_level_fastest": {
                v: r.get("ort_level_fastest") for v, r in report["variants"].items()
            },
            "ort_levels_p50_ms": {
                v: r.get("ort_levels_p50_ms") for v, r in report["variants"].items()
            },
            "macs_ratio": {
                v: r["macs_ratio"] for v, r in report["variants"].items() if "macs_ratio" in r
            },
            "report_only": [v for v, r in report["variants"].items() if r.get("report_only")],
        },
    }
    result["headline"] = headline(result)
    result["targets"] = family_targets(result)
    return result


def headline(r: dict[str, Any]) -> dict[str, Any]:
    """The deployed variant against eager fp32 and ORT fp32, and pruning and sparsity ratios."""
    m, win = r["models"], r["winner"]
    eager, fp32, best = m["torch-eager"], m["fp32"], m[win]
    sign = 1.0 if r["higher_is_better"] else -1.0
    out: dict[str, Any] = {
        "deployed": win,
        "deployed_p50_vs_eager": ratio(best["latency_p50_ms"], eager["latency_p50_ms"]),
        "deployed_p99_vs_eager": ratio(best["latency_p99_ms"], eager["latency_p99_ms"]),
        "deployed_throughput_vs_eager": ratio(best["throughput_per_s"], eager["throughput_per_s"]),
        "deployed_size_vs_eager": ratio(best["size_bytes"], eager["size_bytes"]),
        "deployed_size_vs_ort_fp32": ratio(best["size_bytes"], fp32["size_bytes"]),
        "deployed_metric_drop_vs_eager": round(sign * (eager["score"] - best["score"]), 6),
        "ort_fp32_p50_vs_eager": ratio(fp32["latency_p50_ms"], eager["latency_p50_ms"]),
        "deployed_p50_vs_ort_fp32": ratio(best["latency_p50_ms"], fp32["latency_p50_ms"]),
    }
    from flywheel.core.sections import EvaluateConfig
    from flywheel.measure.selection import gives_speedup
    from flywheel.stages.compress.variants import unpruned_of

    threshold = EvaluateConfig().speedup_threshold
    pruning = []
    for v, macs in r["search"]["macs_ratio"].items():
        base = unpruned_of(v)
        if base in m and v in m:
            pruning.append(
                {
                    "variant": v,
                    "unpruned": base,
                    "macs_ratio": macs,
                    "p50_vs_unpruned": ratio(m[v]["latency_p50_ms"], m[base]["latency_p50_ms"]),
                    "throughput_vs_unpruned": ratio(
                        m[v]["throughput_per_s"], m[base]["throughput_per_s"]
                    ),
                }
            )
    out["pruning"] = pruning
    out["unstructured"] = {
        v: {
            "p50_vs_fp32": ratio(m[v]["latency_p50_ms"], fp32["latency_p50_ms"]),
            "gives_speedup": gives_speedup(
                m[v]["latency_p50_ms"], fp32["latency_p50_ms"], threshold
            ),
        }
        for v in r["search"]["report_only"]
        if v in m
    }
    return out


def family_targets(r: dict[str, Any]) -> list[dict[str, Any]]:
    h, task = r["headline"], r["task"]
    eager_score = r["models"]["torch-eager"]["score"]
    checks = []
    goal = targets.LATENCY_VS_EAGER.get(task)
    if goal is not None:
        checks.append(
            targets.check(
                "deployed p50 vs eager fp32 (CPU, batch 1)", h["deployed_p50_vs_eager"], goal
            )
        )
    checks.append(
        targets.check(
            "deployed size vs eager fp32", h["deployed_size_vs_eager"], targets.SIZE_VS_EAGER
        )
    )
    checks.append(
        targets.check(
            f"deployed {r['metric']} drop vs eager fp32",
            h["deployed_metric_drop_vs_eager"],
            targets.metric_drop_allowed(r["metric"], eager_score),
        )
    )
    for p in h["pruning"]:
        if p["macs_ratio"] >= targets.PRUNED_MACS_AT_LEAST:
            checks.append(
                targets.check(
                    f"{p['variant']} ({p['macs_ratio']:.1f}x fewer MACs) p50 vs {p['unpruned']}",
                    p["p50_vs_unpruned"],
                    targets.PRUNED_LATENCY_VS_UNPRUNED,
                )
            )
    return checks


def measure_gpu(ws: Any, plan: Plan) -> dict[str, Any]:
    """Eager PyTorch on CUDA vs ONNX Runtime's CUDA provider (fp32; fp16 and the fused
    transformer graphs when built), batch 1 and batch ``plan.batch``, and the achieved share
    of the GPU's peak FLOP/s."""
    import torch

    from flywheel.core.ort import CPU, CUDA
    from flywheel.datasets.arrays import load_split
    from flywheel.families import get_family
    from flywheel.measure.runners import onnx_runner
    from flywheel.nn.checkpoint import load_network

    params, layout = ws.params, ws.layout
    family = get_family(params.task)
    spec = family.load_spec(layout.preprocessing_spec)
    x, _ = load_split(layout.split_file("test"))
    net = load_network(layout.checkpoint, params, spec).cuda().eval()

    def eager(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return net(torch.from_numpy(batch).cuda()).float().cpu().numpy()

    runners: dict[str, Any] = {"torch-eager-cuda-fp32": eager}
    runners["ort-cuda-fp32"] = onnx_runner(layout.variant_file("fp32"), 0, [CUDA, CPU])[0]
    # Built only where CUDA works: fp16 for every family, the fused graphs for transformers.
    for variant in ("fp16", "fused-fp32", "fused-fp16"):
        if layout.variant_file(variant).is_file():
            path = layout.variant_file(variant)
            runners[f"ort-cuda-{variant}"] = onnx_runner(path, 0, [CUDA, CPU])[0]
    timing = time_all(runners, x, plan)
    macs = _macs(load_network(layout.checkpoint, params, spec), family.example_input(spec))
    info = gpu_info() or {}
    peaks = info.get("peak_flops") or {}
    for name, t in timing.items():
        precision = "fp16" if name.endswith("fp16") else "fp32"
        achieved = 2.0 * macs * t["throughput_per_s"] if macs else None
        peak = peaks.get(precision)
        t["achieved_flops"] = achieved
        t["share_of_peak"] = ratio(achieved, peak, 6) if achieved and peak else None
        t["peak_note"] = (
            f"vs {precision} dense peak {peak:.3g} FLOP/s at batch {plan.batch}"
            if peak
            else f"peak of {info.get('name')} unknown: add it to benchmarks/machine.py"
        )
    return {
        "gpu": info,
        "macs_per_sample": macs,
        "models": timing,
        "ort_cuda_fp32_p50_vs_eager": ratio(
            timing["ort-cuda-fp32"]["latency_p50_ms"],
            timing["torch-eager-cuda-fp32"]["latency_p50_ms"],
        ),
    }


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
        started = time.perf_counter()
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
            seconds=round(time.perf_counter() - started, 1),
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
