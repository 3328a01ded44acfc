"""ONNX Runtime graph optimisation levels, timed per variant.

A session optimises the graph when it loads it; the level decides how far (constant folding
at ``basic``, operator fusions at ``extended``, layout changes at ``layout``/``all``). More is
usually faster, but not always (fusions for QDQ graphs, small models where layout changes
cost more than they save), so the compress stage measures every level and records the
fastest in the recipe. The variant file itself is never saved at an ORT level: an
offline-optimised file at ``all`` holds hardware-specific operators, and every consumer (the
gate, the server) must be able to load the deployed model with a default session. (The
fused-* variants hold ONNX Runtime's transformer contrib operators, which every build
registers: see :mod:`.fusion`.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from flywheel.measure.runners import onnx_runner
from flywheel.measure.timing import Runner, TimingPlan, summarise, time_interleaved

DEFAULT_LEVEL = "all"


def levels() -> dict[str, ort.GraphOptimizationLevel]:
    """The levels this ONNX Runtime offers, least to most optimisation."""
    names = {
        "disabled": "ORT_DISABLE_ALL",
        "basic": "ORT_ENABLE_BASIC",
        "extended": "ORT_ENABLE_EXTENDED",
        "layout": "ORT_ENABLE_LAYOUT",  # ORT >= 1.22
        "all": "ORT_ENABLE_ALL",
    }
    members = ort.GraphOptimizationLevel.__members__
    return {short: members[full] for short, full in names.items() if full in members}


def fastest_level(p50_ms: dict[str, float], tolerance: float) -> str:
    """The level with the lowest p50; the default unless another is more than ``tolerance``
    faster (a smaller gap is within timing noise), ties going to the lower level."""
    order = list(levels())
    best = min(p50_ms, key=lambda k: (p50_ms[k], order.index(k)))
    default = p50_ms.get(DEFAULT_LEVEL)
    if default is not None and p50_ms[best] >= default * (1.0 - tolerance):
        return DEFAULT_LEVEL
    return best


def sweep_levels(
    path: Path,
    x: np.ndarray,
    *,
    threads: int,
    providers: list[str],
    tolerance: float,
    runs: int = 90,
    warmup: int = 10,
    rounds: int = 3,
) -> dict[str, Any]:
    """Batch-1 p50 of ``path`` at every level, interleaved, and which level is fastest."""
    runners: dict[str, Runner] = {
        name: onnx_runner(path, threads, providers, level)[0] for name, level in levels().items()
    }
    plan = TimingPlan(warmup=warmup, latency_runs=runs, batch=1, batch_runs=0, rounds=rounds)
    samples = time_interleaved(runners, x, plan)
    p50 = {name: summarise(s, 1).latency_p50_ms for name, s in samples.items()}
    fastest = fastest_level(p50, tolerance)
    return {
        "p50_ms": p50,
        "fastest": fastest,
        "default": DEFAULT_LEVEL,
        "fastest_vs_default": round(p50[fastest] / p50[DEFAULT_LEVEL], 4),
        "runs_per_level": runs,
        "intra_op_threads": threads,
        "deployed_file": "the variant as built, at no ORT level: any session optimises it on load",
    }
