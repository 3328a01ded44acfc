"""What every benchmark shares: where results go, how one is written, summary statistics."""

from __future__ import annotations

import json
import math
import statistics
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent
RESULTS = HERE / "results"
PLOTS = HERE / "plots"
SHARED_DATASETS = PROJECT.parent / "shared" / "datasets"


def spread(values: Iterable[float]) -> dict[str, float]:
    """Median and spread of repeated measurements: quartiles, extremes and count."""
    v = sorted(float(x) for x in values)
    if not v:
        return {"n": 0}
    q = statistics.quantiles(v, n=4, method="inclusive") if len(v) > 1 else [v[0]] * 3
    return {
        "n": len(v),
        "median": round(statistics.median(v), 6),
        "p25": round(q[0], 6),
        "p75": round(q[2], 6),
        "min": round(v[0], 6),
        "max": round(v[-1], 6),
    }


def percentile(values: Iterable[float], pct: float) -> float:
    """Linear-interpolated percentile (numpy's default) without importing numpy."""
    v = sorted(float(x) for x in values)
    if not v:
        return math.nan
    k = (len(v) - 1) * pct / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def ratio(a: float | None, b: float | None, digits: int = 4) -> float | None:
    if a is None or b is None or b == 0 or math.isnan(a) or math.isnan(b):
        return None
    return round(a / b, digits)


def skip(what: str, reason: str) -> dict[str, str]:
    return {"what": what, "reason": reason}


def write_result(name: str, body: Mapping[str, Any], started: float) -> Path:
    """``results/<name>.json`` with the body, the machine and how long the benchmark took."""
    from benchmarks.machine import machine_info

    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    full = {
        "benchmark": name,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "seconds": round(time.perf_counter() - started, 1),
        "machine": machine_info(),
        **body,
    }
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(full, indent=2, default=_plain) + "\n")
    tmp.replace(path)
    return path


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def load_result(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return dict(json.loads(path.read_text())) if path.is_file() else None


def benchmark_card(task: str, labels: Iterable[str]) -> dict[str, Any]:
    """The card of a model registered by a benchmark rather than a pipeline run."""
    return {
        "task": task,
        "labels": list(labels),
        "data_hash": "benchmark",
        "params_hash": "benchmark",
        "code_version": "benchmark",
        "variant": "fp32",
        "recipe": {},
        "metrics": {},
        "params": {},
        "evaluation": {},
    }
