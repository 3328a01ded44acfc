"""Which variant wins and why each other one did not: pure functions over measurements."""

from __future__ import annotations

from dataclasses import dataclass

from flywheel.measure.selection import (
    VariantResult,
    VerdictRules,
    choose_winner,
    gives_speedup,
    pruning_comparison,
    verdicts,
)

RULES = VerdictRules(metric="accuracy", max_drop=0.01, speedup_threshold=0.9)


@dataclass(frozen=True)
class _M:
    score: float
    latency_p50_ms: float


def _r(accuracy: float, p50_ms: float) -> VariantResult:
    return VariantResult(accuracy, {"accuracy": accuracy}, 1000, p50_ms, p50_ms, 1.0, "cpu")


def test_report_only_variants_never_win() -> None:
    results = {"fp32": _r(0.97, 1.0), "unstructured": _r(0.97, 0.5), "int8": _r(0.97, 0.8)}
    assert choose_winner(results, 0.01, report_only=["unstructured"]) == "int8"
    assert choose_winner(results, 0.01) == "unstructured"


def test_verdicts_say_why_each_variant_won_or_lost() -> None:
    results = {
        "fp32": _M(0.97, 1.0),
        "int8": _M(0.965, 0.5),
        "pruned-int8": _M(0.90, 0.3),
        "pruned-fp32": _M(0.97, 0.8),
        "unstructured": _M(0.968, 1.02),
    }
    why = verdicts(
        results,
        "int8",
        RULES,
        qualified=["fp32", "int8", "pruned-fp32", "unstructured"],
        report_only=["unstructured"],
    )
    assert why["int8"].startswith("deployed: fastest of 3 variants")
    assert "accuracy -0.0050" in why["int8"]
    assert why["pruned-int8"].startswith("rejected: accuracy 0.0700 worse")
    assert why["pruned-fp32"] == "qualified but slower: 1.60x the winner's latency"
    assert why["fp32"] == "qualified but slower: 2.00x the winner's latency"
    assert why["unstructured"].startswith("report only: 1.02x fp32 latency: NO speed-up")


def test_verdict_for_a_report_only_variant_that_is_faster() -> None:
    results = {"fp32": _M(0.97, 1.0), "unstructured": _M(0.97, 0.5)}
    why = verdicts(
        results,
        "fp32",
        RULES,
        qualified=["fp32", "unstructured"],
        report_only=["unstructured"],
    )
    assert "a speed-up, but not a deployable variant" in why["unstructured"]
    assert "accuracy +0.0000" in why["unstructured"]
    assert why["fp32"].startswith("deployed: fastest of 1 variants")


def test_speedup_needs_a_clear_margin() -> None:
    assert gives_speedup(0.9, 1.0, 0.9)
    assert not gives_speedup(0.95, 1.0, 0.9)


def test_pruning_compares_with_the_same_precision() -> None:
    rows = pruning_comparison(
        {"pruned-int8": "int8", "pruned-fp32@0.7": "fp32"},
        {"fp32": 1.0, "int8": 0.5, "pruned-int8": 0.25},
        {"pruned-int8": 3.5},
        {"pruned-int8": 0.5},
    )
    assert rows == [
        {
            "variant": "pruned-int8",
            "prune_ratio": 0.5,
            "macs_ratio": 3.5,
            "unpruned": "int8",
            "p50_vs_unpruned": 0.5,
        }
    ]
    missing_base = pruning_comparison({"pruned-fp32": "fp32"}, {"pruned-fp32": 1.0}, {}, {})
    assert missing_base[0]["p50_vs_unpruned"] is None
