"""Evaluate stage: accuracy, size and speed of every variant, and the winner among them.

Every variant (and eager PyTorch, the baseline) is timed by the interleaved harness of
:mod:`flywheel.measure.timing`; the winner and each variant's verdict come from
:mod:`flywheel.measure.selection`; :mod:`.report` lays the findings out as
``metrics/evaluation.json``, which the gate, the card and the Prefect artifacts read.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from typing import Any

import numpy as np

from flywheel.core.atomic import atomic_write_text
from flywheel.core.config import Params
from flywheel.core.layout import Layout
from flywheel.core.ort import available_providers
from flywheel.datasets.arrays import load_split
from flywheel.families import get_family
from flywheel.measure.runners import onnx_runner, output_metrics, timing_plan
from flywheel.measure.selection import REFERENCE, VariantResult, candidates, rank
from flywheel.measure.timing import Runner, Timing, latency_noise, summarise, time_interleaved
from flywheel.nn.checkpoint import load_network
from flywheel.nn.eager import state_dict_bytes, torch_runner, torch_threads
from flywheel.stages.compress.variants import is_report_only, planned_variants
from flywheel.stages.evaluate.report import Findings, build_report

log = logging.getLogger(__name__)


def _recipe(layout: Layout, variant: str) -> dict[str, Any]:
    path = layout.recipe_file(variant)
    return dict(json.loads(path.read_text())) if path.is_file() else {}


def _variants(params: Params, layout: Layout) -> tuple[list[str], dict[str, str]]:
    """The planned variants built on this machine, and those skipped here with why."""
    plan = planned_variants(params.compress.variants, params.compress.ratios)
    recipes = {p.name: _recipe(layout, p.name) for p in plan}
    skipped = {name: str(r["skipped"]) for name, r in recipes.items() if "skipped" in r}
    variants = [p.name for p in plan if p.name not in skipped]
    missing = sorted(v for v in variants if not layout.variant_file(v).is_file())
    if REFERENCE in missing:
        raise FileNotFoundError(f"{layout.variant_file(REFERENCE)} not found: run export first")
    if missing:
        raise FileNotFoundError(f"variants not found (run compress first): {missing}")
    return variants, skipped


def _measure_all(
    params: Params, layout: Layout, variants: list[str], x: np.ndarray, y: np.ndarray
) -> tuple[dict[str, VariantResult], dict[str, dict[str, float]], dict[str, Timing], int]:
    """Every variant's result, the metrics and timings of all runners (eager included),
    and eager's weight size."""
    cfg = params.evaluate
    providers = available_providers()
    runners: dict[str, Runner] = {}
    provider_of: dict[str, str] = {}
    for v in variants:
        runners[v], provider_of[v] = onnx_runner(
            layout.variant_file(v), cfg.intra_op_threads, providers
        )
    spec = get_family(params.task).load_spec(layout.preprocessing_spec)
    net = load_network(layout.checkpoint, params, spec)
    runners["torch_eager"] = torch_runner(net)
    with torch_threads(cfg.intra_op_threads):
        metrics = {
            n: output_metrics(run, x, y, cfg.throughput_batch, params.is_regression)
            for n, run in runners.items()
        }
        samples = time_interleaved(runners, x, timing_plan(cfg))
    timing = {n: summarise(s, cfg.throughput_batch) for n, s in samples.items()}
    results = {
        v: VariantResult(
            score=metrics[v][params.gate.metric],
            metrics=metrics[v],
            size_bytes=layout.variant_file(v).stat().st_size,
            provider=provider_of[v],
            **asdict(timing[v]),
            latency_noise=round(latency_noise(samples[v]), 4),
        )
        for v in variants
    }
    return results, metrics, timing, state_dict_bytes(net)


def run(params: Params, layout: Layout) -> dict[str, object]:
    x, y = load_split(layout.split_file("test"))
    variants, skipped = _variants(params, layout)
    results, metrics, timing, eager_bytes = _measure_all(params, layout, variants, x, y)
    report_only = [v for v in variants if is_report_only(v)]
    names = candidates(
        results, params.gate.max_drop, metric=params.gate.metric, report_only=report_only
    )
    ranking = rank(results, names, params.evaluate.latency_noise_floor)
    winner = ranking[0].name
    findings = Findings(
        results=results,
        winner=winner,
        ranking=ranking,
        report_only=report_only,
        skipped=skipped,
        recipes={v: _recipe(layout, v) for v in variants},
        files={v: layout.variant_file(v).name for v in variants},
        eager_metrics=metrics["torch_eager"],
        eager_timing=timing["torch_eager"],
        eager_bytes=eager_bytes,
        samples=len(x),
    )
    report = build_report(params, findings)
    atomic_write_text(layout.evaluation_report, json.dumps(report, indent=2) + "\n")
    log.info("evaluate: winner %s (p50 %.4f ms)", winner, results[winner].latency_p50_ms)
    return report
