"""The compression search's plan and its verdicts: which variants to build, and why one won.

``compress.variants`` names kinds; the plan expands them into concrete variants: one pruned
variant per ratio in ``compress.prune_ratios`` (the first keeps the plain name, the others
carry their ratio, ``pruned-int8@0.75``). The verdicts turn the measured table into one line
per variant, so a reader of the report, the card or the Prefect artifact sees why the winner
won and why every other variant did not. Pure functions only: no I/O, no timing.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from flywheel.metrics import worse_by

REFERENCE = "fp32"
PRUNED_KINDS = ("pruned-fp32", "pruned-int8")
# Kinds that apply to any network, whatever its family lists in ``Family.variants``.
UNIVERSAL_KINDS = frozenset({"fp32", "fp16", "unstructured"})
# Measured and shown, never deployed: zeroed weights in dense tensors are the same work.
REPORT_ONLY_KINDS = frozenset({"unstructured"})
# FP16 kernels are a GPU feature; on CPU ONNX Runtime would insert casts around fp32 kernels.
GPU_ONLY_KINDS = frozenset({"fp16"})
# A variant "gives a speed-up" only if it is at least this much faster than fp32; a smaller
# difference is within the noise of one run on a small shared machine.
SPEEDUP_THRESHOLD = 0.9
# The unpruned variant of the same precision, which a pruned variant must beat.
UNPRUNED = {"pruned-fp32": "fp32", "pruned-int8": "int8"}


@dataclass(frozen=True)
class Planned:
    name: str
    kind: str
    ratio: float | None = None  # structured pruning ratio, for pruned kinds


def pruned_name(kind: str, ratio: float, primary: bool) -> str:
    return kind if primary else f"{kind}@{ratio:g}"


def kind_of(name: str) -> str:
    return name.split("@", 1)[0]


def planned_variants(kinds: Sequence[str], ratios: Sequence[float]) -> list[Planned]:
    """Every concrete variant for ``kinds`` (in their order) at every pruning ratio."""
    if not ratios:
        raise ValueError("at least one pruning ratio is needed")
    plan: list[Planned] = []
    for kind in dict.fromkeys(kinds):
        if kind in PRUNED_KINDS:
            plan += [Planned(pruned_name(kind, r, i == 0), kind, r) for i, r in enumerate(ratios)]
        else:
            plan.append(Planned(kind, kind))
    return plan


def not_applicable(kinds: Collection[str], family_variants: Collection[str]) -> list[str]:
    return sorted(set(kinds) - set(family_variants) - UNIVERSAL_KINDS)


class Measured(Protocol):
    @property
    def score(self) -> float: ...

    @property
    def latency_p50_ms(self) -> float: ...


def _signed(delta: float) -> str:
    # round first: -0.00001 would otherwise print as "-0.0000"
    return f"{round(delta, 4) + 0.0:+.4f}"


def gives_speedup(p50_ms: float, reference_p50_ms: float) -> bool:
    return p50_ms <= SPEEDUP_THRESHOLD * reference_p50_ms


def verdicts(
    results: Mapping[str, Measured],
    winner: str,
    *,
    metric: str,
    max_drop: float,
    qualified: Collection[str],
    report_only: Collection[str] = (),
    reference: str = REFERENCE,
) -> dict[str, str]:
    """One line per variant saying why it won, lost or was not a candidate."""
    ref = results[reference]
    win = results[winner]
    candidates = [n for n in results if n in qualified and n not in report_only]
    out: dict[str, str] = {}
    for name, r in results.items():
        vs_ref = r.latency_p50_ms / ref.latency_p50_ms
        vs_win = r.latency_p50_ms / win.latency_p50_ms
        drop = worse_by(metric, ref.score, r.score)
        if name in report_only:
            speed = (
                f"{vs_ref:.2f}x fp32 latency: a speed-up, but not a deployable variant"
                if gives_speedup(r.latency_p50_ms, ref.latency_p50_ms)
                else f"{vs_ref:.2f}x fp32 latency: NO speed-up (dense kernels still multiply "
                "the zeros)"
            )
            out[name] = f"report only: {speed}; {metric} {_signed(-drop)} vs fp32"
        elif name == winner:
            out[name] = (
                f"deployed: fastest of {len(candidates)} variants within max_drop "
                f"{max_drop:g} of fp32 ({vs_ref:.2f}x fp32 latency, {metric} {_signed(-drop)})"
            )
        elif name not in qualified:
            out[name] = (
                f"rejected: {metric} {drop:.4f} worse than fp32, over max_drop {max_drop:g} "
                f"({vs_ref:.2f}x fp32 latency)"
            )
        else:
            out[name] = f"qualified but slower: {vs_win:.2f}x the winner's latency"
    return out


def pruning_comparison(
    kinds: Mapping[str, str],
    p50_ms: Mapping[str, float],
    macs_ratio: Mapping[str, float],
    ratio: Mapping[str, float],
) -> list[dict[str, float | str | None]]:
    """Each measured pruned variant against the unpruned variant of the same precision."""
    rows: list[dict[str, float | str | None]] = []
    for name, kind in kinds.items():
        base = UNPRUNED.get(kind)
        if base is None or name not in p50_ms:
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
