"""The issue's targets as data, and the check that compares a measurement with one.

Every check records the measured value, the goal and whether it was met; a value that could
not be measured is reported as such (``met`` None), never as a pass.
"""

from __future__ import annotations

from typing import Any

# Deployed variant vs PyTorch eager fp32, CPU batch-1 p50 latency, per task.
LATENCY_VS_EAGER = {"image_classification": 0.5, "text_classification": 0.5, "sentiment": 0.15}
# The Optimum peer (sentiment): Flywheel's deployed model no slower than Optimum's best among
# its models at most this much less accurate (half a point of accuracy).
PEER_LATENCY_RATIO = 1.0
PEER_ACCURACY_POINTS = 0.005
SIZE_VS_EAGER = 0.3
METRIC_POINTS = 0.01  # one point of accuracy (or r2); rmse/mae: 1% of eager's value
PRUNED_MACS_AT_LEAST = 2.0
PRUNED_LATENCY_VS_UNPRUNED = 0.75
LIGHTNING_VS_PLAIN = 0.95
# Issue 18: the flow adds at most a second to the stages called directly, stays within 1.1x
# of `dvc repro` of the same stages from a shell, and answers an unchanged rerun in a second.
OVERHEAD_SECONDS = 1.0
FLOW_VS_DVC_REPRO = 1.1
RERUN_SECONDS = 1.0
# Ten new files -> the new model served, under `flywheel up` on the default data (median).
CHANGE_TO_PRODUCTION_S = 20.0
VALIDATION_ROWS_PER_S = 1_000_000.0


def check(
    name: str, measured: float | None, goal: float, *, at_most: bool = True
) -> dict[str, Any]:
    met = None if measured is None else (measured <= goal if at_most else measured >= goal)
    return {
        "target": name,
        "measured": measured,
        "goal": f"{'<=' if at_most else '>='} {goal:g}",
        "met": met,
    }


def metric_drop_allowed(metric: str, eager_value: float) -> float:
    """How much worse than eager fp32 the deployed model may be: one point, in metric units."""
    if metric in ("rmse", "mae"):
        return abs(eager_value) * 0.01
    return METRIC_POINTS


def either(name: str, a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """A target met when either of two checks is (overhead: a share OR an absolute bound)."""
    mets = [c["met"] for c in (a, b)]
    met = True if True in mets else (None if None in mets else False)
    return {
        "target": name,
        "measured": f"{a['measured']} / {b['measured']}",
        "goal": f"{a['goal']} or {b['goal']}",
        "met": met,
    }
