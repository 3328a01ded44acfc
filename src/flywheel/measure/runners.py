"""ONNX Runtime models as batch -> outputs functions, and one model measured on its own.

torch-free on purpose: the gate and the server-side tools measure exported files, never
networks; eager PyTorch runners live in :mod:`flywheel.nn.eager`.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import onnxruntime as ort

from flywheel.core.ort import INPUT_NAME, make_session
from flywheel.core.sections import EvaluateConfig
from flywheel.measure.metrics import compute_metrics
from flywheel.measure.selection import VariantResult
from flywheel.measure.timing import Runner, TimingPlan, benchmark


def onnx_runner(
    path: Path,
    threads: int,
    providers: list[str],
    level: ort.GraphOptimizationLevel = ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
) -> tuple[Runner, str]:
    """A batch -> outputs function over one ONNX Runtime session, and its provider."""
    session = make_session(
        path, intra_op_threads=threads, graph_optimization=level, providers=providers
    )

    def run(batch: np.ndarray) -> np.ndarray:
        return np.asarray(session.run(None, {INPUT_NAME: batch})[0])

    return run, session.get_providers()[0]


def output_metrics(
    run: Runner, x: np.ndarray, y: np.ndarray, batch_size: int, regression: bool
) -> dict[str, float]:
    outputs = np.concatenate([run(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
    return {k: round(v, 6) for k, v in compute_metrics(outputs, y, regression).items()}


def timing_plan(cfg: EvaluateConfig, rounds: int | None = None) -> TimingPlan:
    """The evaluate section's timing settings; ``rounds`` overrides ``evaluate.rounds``."""
    return TimingPlan(
        warmup=cfg.warmup_runs,
        latency_runs=cfg.latency_runs,
        batch=cfg.throughput_batch,
        batch_runs=cfg.throughput_runs,
        rounds=cfg.rounds if rounds is None else rounds,
    )


def measure_variant(
    path: Path,
    x: np.ndarray,
    y: np.ndarray,
    cfg: EvaluateConfig,
    providers: list[str],
    metric: str = "accuracy",
) -> VariantResult:
    """The metrics on (``x``, ``y``), file size and speed of one ONNX model on its own."""
    run, provider = onnx_runner(Path(path), cfg.intra_op_threads, providers)
    timing = benchmark({"v": run}, x, timing_plan(cfg, rounds=1))["v"]
    metrics = output_metrics(run, x, y, cfg.throughput_batch, regression=metric != "accuracy")
    return VariantResult(
        score=metrics[metric],
        metrics=metrics,
        size_bytes=Path(path).stat().st_size,
        provider=provider,
        **asdict(timing),
    )
