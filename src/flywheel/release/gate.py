"""The promotion gate: a pure decision over measured numbers, and a probe of the real file.

Thresholds come from ``params.gate``; a rejection raises :class:`GateRejected` carrying the
whole :class:`GateResult`, so callers can show every check, not just the first failure.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from flywheel.core.errors import GateRejected
from flywheel.core.sections import LOWER_IS_BETTER, GateConfig
from flywheel.measure.metrics import worse_by


@dataclass(frozen=True)
class ModelMeasure:
    """One model measured on the current test split, on this machine, in this run.
    ``score`` is the gate metric (``params.gate.metric``) in its own units."""

    score: float
    latency_p50_ms: float
    size_bytes: int
    version: str | None = None


@dataclass(frozen=True)
class Check:
    name: str
    value: float
    threshold: float
    passed: bool
    detail: str


@dataclass(frozen=True)
class GateResult:
    passed: bool
    checks: tuple[Check, ...]
    candidate: ModelMeasure
    production: ModelMeasure | None
    reasons: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def absolute_bound(cfg: GateConfig) -> float | None:
    """The configured floor (or ceiling, for error metrics) on the gate metric."""
    return {
        "accuracy": cfg.min_accuracy,
        "r2": cfg.min_r2,
        "rmse": cfg.max_rmse,
        "mae": cfg.max_mae,
    }[cfg.metric]


def decide(candidate: ModelMeasure, production: ModelMeasure | None, cfg: GateConfig) -> GateResult:
    metric = cfg.metric
    lower_better = metric in LOWER_IS_BETTER
    checks = []
    bound = absolute_bound(cfg)
    if bound is not None:
        ok = candidate.score <= bound if lower_better else candidate.score >= bound
        checks.append(
            Check(
                f"{'max' if lower_better else 'min'}_{metric}",
                candidate.score,
                bound,
                ok,
                f"{metric} {candidate.score:.4f} vs "
                f"{'allowed at most' if lower_better else 'required'} {bound:.4f}",
            )
        )
    if production is not None:
        worse = worse_by(metric, production.score, candidate.score)
        checks.append(
            Check(
                f"vs_production_{metric}",
                worse,
                cfg.tolerance,
                worse <= cfg.tolerance + 1e-12,
                f"{metric} {candidate.score:.4f} vs production {production.version} "
                f"{production.score:.4f} (tolerance {cfg.tolerance})",
            )
        )
        latency_ratio = candidate.latency_p50_ms / max(production.latency_p50_ms, 1e-9)
        checks.append(
            Check(
                "vs_production_latency",
                latency_ratio,
                cfg.max_latency_ratio,
                latency_ratio <= cfg.max_latency_ratio,
                f"batch-1 p50 latency {latency_ratio:.2f}x production's"
                f" (max {cfg.max_latency_ratio}x)",
            )
        )
        size_ratio = candidate.size_bytes / max(production.size_bytes, 1)
        checks.append(
            Check(
                "vs_production_size",
                size_ratio,
                cfg.max_size_ratio,
                size_ratio <= cfg.max_size_ratio,
                f"size {size_ratio:.2f}x production's (max {cfg.max_size_ratio}x)",
            )
        )
    reasons = tuple(c.detail for c in checks if not c.passed)
    return GateResult(not reasons, tuple(checks), candidate, production, reasons)


def enforce(result: GateResult) -> GateResult:
    if not result.passed:
        raise GateRejected(result)
    return result


def probe(model: Path | bytes, batch: np.ndarray, num_outputs: int) -> None:
    """Load the model in a fresh session and require finite outputs of the right shape."""
    from flywheel.core.ort import make_session

    source = model if isinstance(model, bytes) else str(model)
    try:
        session = make_session(source)
        # The batch keeps the family's dtype (float32 pixels/features, int64 token ids).
        out = session.run(None, {session.get_inputs()[0].name: np.ascontiguousarray(batch)})[0]
    except Exception as err:
        raise GateRejected(_probe_failure(f"probe failed to run the model: {err}")) from err
    expected = (batch.shape[0], num_outputs)
    if tuple(out.shape) != expected:
        raise GateRejected(_probe_failure(f"probe output shape {tuple(out.shape)} != {expected}"))
    if not np.isfinite(out).all():
        raise GateRejected(_probe_failure("probe output contains NaN or Inf"))


def _probe_failure(reason: str) -> GateResult:
    nothing = ModelMeasure(float("nan"), float("nan"), 0)
    check = Check("probe", 0.0, 1.0, False, reason)
    return GateResult(False, (check,), nothing, None, (reason,))
