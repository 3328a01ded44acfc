"""Which variant wins, and why each of the others did not: pure functions over measurements.

The winner is the fastest (batch-1 p50) variant at most ``gate.max_drop`` worse than the
reference (fp32) on the gate metric; report-only variants are measured and shown but never
win. The verdicts turn the table into one line per variant, so a reader of the report, the
card or the Prefect artifact sees why the winner won and why every other variant did not.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Protocol

from flywheel.measure.metrics import worse_by

REFERENCE = "fp32"
# Accuracies are ratios of counts: this absorbs float error in "ref - max_drop" comparisons.
_EPS = 1e-9


@dataclass(frozen=True)
class VariantResult:
    score: float  # the gate metric, in its own units and direction
    metrics: dict[str, float]
    size_bytes: int
    latency_p50_ms: float
    latency_p99_ms: float
    throughput_per_s: float
    provider: str


class Measured(Protocol):
    @property
    def score(self) -> float: ...

    @property
    def latency_p50_ms(self) -> float: ...


def qualifies(ref: Measured, r: Measured, max_drop: float, metric: str) -> bool:
    return worse_by(metric, ref.score, r.score) <= max_drop + _EPS


def choose_winner(
    results: Mapping[str, VariantResult],
    max_drop: float,
    reference: str = REFERENCE,
    metric: str = "accuracy",
    report_only: Collection[str] = (),
) -> str:
    """The fastest (batch-1 p50) variant at most ``max_drop`` worse than ``reference`` on
    ``metric`` (higher is better for accuracy and r2, lower for rmse and mae), leaving out
    the ``report_only`` variants.

    The reference always qualifies, so there is always a winner; ties on latency go to the
    smaller file, then to the name, so the choice never depends on dict order.
    """
    if reference not in results:
        raise KeyError(f"reference variant {reference!r} has no result")
    ref = results[reference]
    qualified = [
        name
        for name, r in results.items()
        if name == reference or (name not in report_only and qualifies(ref, r, max_drop, metric))
    ]
    return min(qualified, key=lambda n: (results[n].latency_p50_ms, results[n].size_bytes, n))


def _signed(delta: float) -> str:
    # round first: -0.00001 would otherwise print as "-0.0000"
    return f"{round(delta, 4) + 0.0:+.4f}"


def gives_speedup(p50_ms: float, reference_p50_ms: float, threshold: float) -> bool:
    """At least ``1 - threshold`` faster than the reference; a smaller difference is within
    the noise of one run (``evaluate.speedup_threshold``)."""
    return p50_ms <= threshold * reference_p50_ms


@dataclass(frozen=True)
class VerdictRules:
    metric: str
    max_drop: float
    speedup_threshold: float
    reference: str = REFERENCE


def _report_only_verdict(vs_ref: float, drop: float, rules: VerdictRules, fast: bool) -> str:
    speed = (
        f"{vs_ref:.2f}x fp32 latency: a speed-up, but not a deployable variant"
        if fast
        else f"{vs_ref:.2f}x fp32 latency: NO speed-up (dense kernels still multiply the zeros)"
    )
    return f"report only: {speed}; {rules.metric} {_signed(-drop)} vs fp32"


def verdicts(
    results: Mapping[str, Measured],
    winner: str,
    rules: VerdictRules,
    *,
    qualified: Collection[str],
    report_only: Collection[str] = (),
) -> dict[str, str]:
    """One line per variant saying why it won, lost or was not a candidate."""
    ref, win = results[rules.reference], results[winner]
    candidates = [n for n in results if n in qualified and n not in report_only]
    out: dict[str, str] = {}
    for name, r in results.items():
        vs_ref = r.latency_p50_ms / ref.latency_p50_ms
        drop = worse_by(rules.metric, ref.score, r.score)
        if name in report_only:
            fast = gives_speedup(r.latency_p50_ms, ref.latency_p50_ms, rules.speedup_threshold)
            out[name] = _report_only_verdict(vs_ref, drop, rules, fast)
        elif name == winner:
            out[name] = (
                f"deployed: fastest of {len(candidates)} variants within max_drop "
                f"{rules.max_drop:g} of fp32 ({vs_ref:.2f}x fp32 latency, "
                f"{rules.metric} {_signed(-drop)})"
            )
        elif name not in qualified:
            out[name] = (
                f"rejected: {rules.metric} {drop:.4f} worse than fp32, over max_drop "
                f"{rules.max_drop:g} ({vs_ref:.2f}x fp32 latency)"
            )
        else:
            vs_win = r.latency_p50_ms / win.latency_p50_ms
            out[name] = f"qualified but slower: {vs_win:.2f}x the winner's latency"
    return out


def pruning_comparison(
    unpruned_of: Mapping[str, str],
    p50_ms: Mapping[str, float],
    macs_ratio: Mapping[str, float],
    ratio: Mapping[str, float],
) -> list[dict[str, float | str | None]]:
    """Each measured pruned variant (``unpruned_of``: variant -> the unpruned variant of the
    same precision) against that unpruned variant."""
    rows: list[dict[str, float | str | None]] = []
    for name, base in unpruned_of.items():
        if name not in p50_ms:
            continue
        rows.append(
            {
                "variant": name,
                "prune_ratio": ratio.get(name),
                "macs_ratio": macs_ratio.get(name),
                "unpruned": base,
                "p50_vs_unpruned": (
                    round(p50_ms[name] / p50_ms[base], 4) if base in p50_ms else None
                ),
            }
        )
    return rows
