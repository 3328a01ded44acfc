"""Which variant wins, and why each of the others did not: pure functions over measurements.

The candidates are the variants at most ``gate.max_drop`` worse than the reference (fp32)
on the gate metric; report-only variants are measured and shown but never win. They are
ranked by batch-1 p50 latency, where two latencies that do not differ beyond the timing
noise measured in this run (at least ``evaluate.latency_noise_floor``) count as equal and
the smaller file goes first: two variants that trade places within the noise must not
make the choice (and the gate's size check against production) flip from run to run.
The gate walks this ranking, so the deployed model is the best one that passes it. The
verdicts turn the table into one line per variant, so a reader of the report, the card or
the Prefect artifact sees why the winner won and why every other variant did not.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
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
    # Relative spread of this variant's per-round batch-1 medians (see measure.timing).
    latency_noise: float = 0.0


class Measured(Protocol):
    @property
    def score(self) -> float: ...

    @property
    def latency_p50_ms(self) -> float: ...


def qualifies(ref: Measured, r: Measured, max_drop: float, metric: str) -> bool:
    return worse_by(metric, ref.score, r.score) <= max_drop + _EPS


@dataclass(frozen=True)
class Ranked:
    """One candidate's place in the ranking: the latency band it was compared within
    (relative), and the faster-or-equal candidates it tied with on latency."""

    name: str
    band: float
    tied_with: tuple[str, ...] = ()


def candidates(
    results: Mapping[str, VariantResult],
    max_drop: float,
    reference: str = REFERENCE,
    metric: str = "accuracy",
    report_only: Collection[str] = (),
) -> list[str]:
    """The deployable variants within ``max_drop`` of ``reference`` (which always is one)."""
    if reference not in results:
        raise KeyError(f"reference variant {reference!r} has no result")
    ref = results[reference]
    return [
        name
        for name, r in results.items()
        if name == reference or (name not in report_only and qualifies(ref, r, max_drop, metric))
    ]


def _band(a: VariantResult, b: VariantResult, floor: float) -> float:
    return max(a.latency_noise, b.latency_noise, floor)


def rank(
    results: Mapping[str, VariantResult],
    names: Sequence[str],
    noise_floor: float = 0.0,
) -> list[Ranked]:
    """``names`` best first: the fastest left, unless others lie within the timing noise
    of it, in which case the smallest file of those goes first (then the name, so the
    order never depends on dict order)."""
    left = sorted(names, key=lambda n: (results[n].latency_p50_ms, results[n].size_bytes, n))
    out: list[Ranked] = []
    while left:
        fastest = results[left[0]]
        tied = [
            n
            for n in left
            if results[n].latency_p50_ms
            <= fastest.latency_p50_ms * (1 + _band(fastest, results[n], noise_floor)) + _EPS
        ]
        best = min(tied, key=lambda n: (results[n].size_bytes, results[n].latency_p50_ms, n))
        others = tuple(n for n in tied if n != best)
        out.append(Ranked(best, _band(fastest, results[best], noise_floor), others))
        left.remove(best)
    return out


def choose_winner(
    results: Mapping[str, VariantResult],
    max_drop: float,
    reference: str = REFERENCE,
    metric: str = "accuracy",
    report_only: Collection[str] = (),
    noise_floor: float = 0.0,
) -> str:
    """The first of :func:`rank` over the :func:`candidates`: the fastest (batch-1 p50)
    variant at most ``max_drop`` worse than ``reference`` on ``metric`` (higher is better
    for accuracy and r2, lower for rmse and mae), the smallest file among those tied with
    it within the timing noise; the reference always qualifies, so there is always one."""
    names = candidates(results, max_drop, reference, metric, report_only)
    return rank(results, names, noise_floor)[0].name


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


def _winner_verdict(
    first: Ranked | None, count: int, vs_ref: float, drop: float, rules: VerdictRules
) -> str:
    within = (
        f"{count} variants within max_drop {rules.max_drop:g} of fp32 ({vs_ref:.2f}x fp32 "
        f"latency, {rules.metric} {_signed(-drop)})"
    )
    if first is not None and first.tied_with:
        return (
            f"winner: smallest file of {len(first.tied_with) + 1} variants tied on latency "
            f"within the timing noise ({first.band:.0%}), among {within}"
        )
    return f"winner: fastest of {within}"


def _kb(r: Measured) -> str:
    return f"{getattr(r, 'size_bytes', 0) / 1024:.1f} KB"


def _loser_verdict(
    name: str, place: int, count: int, ranking: Sequence[Ranked], results: Mapping[str, Measured]
) -> str:
    first = ranking[0]
    win, r = results[first.name], results[name]
    head = f"ranked {place} of {count}"
    if name in first.tied_with:
        return (
            f"{head}: ties the winner's latency within the timing noise ({first.band:.0%}), "
            f"but its file is larger ({_kb(r)} vs {_kb(win)})"
        )
    return f"{head}: slower, {r.latency_p50_ms / win.latency_p50_ms:.2f}x the winner's latency"


def verdicts(
    results: Mapping[str, Measured],
    winner: str,
    rules: VerdictRules,
    *,
    qualified: Collection[str],
    report_only: Collection[str] = (),
    ranking: Sequence[Ranked] = (),
) -> dict[str, str]:
    """One line per variant saying why it won, lost or was not a candidate; ``ranking``
    (from :func:`rank`, winner first) gives each candidate its place and its ties."""
    ref = results[rules.reference]
    names = [n for n in results if n in qualified and n not in report_only]
    if not ranking:
        rest = sorted((n for n in names if n != winner), key=lambda n: results[n].latency_p50_ms)
        order = [winner, *rest]
        ranking = [Ranked(n, 0.0) for n in order]
    place = {entry.name: i + 1 for i, entry in enumerate(ranking)}
    out: dict[str, str] = {}
    for name, r in results.items():
        vs_ref = r.latency_p50_ms / ref.latency_p50_ms
        drop = worse_by(rules.metric, ref.score, r.score)
        if name in report_only:
            fast = gives_speedup(r.latency_p50_ms, ref.latency_p50_ms, rules.speedup_threshold)
            out[name] = _report_only_verdict(vs_ref, drop, rules, fast)
        elif name == winner:
            out[name] = _winner_verdict(ranking[0], len(names), vs_ref, drop, rules)
        elif name not in qualified:
            out[name] = (
                f"rejected: {rules.metric} {drop:.4f} worse than fp32, over max_drop "
                f"{rules.max_drop:g} ({vs_ref:.2f}x fp32 latency)"
            )
        else:
            out[name] = _loser_verdict(name, place[name], len(names), ranking, results)
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
