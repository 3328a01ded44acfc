"""Which variant wins and why each other one did not: pure functions over measurements."""

from __future__ import annotations

from dataclasses import dataclass

from flywheel.measure.selection import (
    VariantResult,
    VerdictRules,
    candidates,
    choose_winner,
    gives_speedup,
    pruning_comparison,
    rank,
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
    assert why["int8"].startswith("winner: fastest of 3 variants")
    assert "accuracy -0.0050" in why["int8"]
    assert why["pruned-int8"].startswith("rejected: accuracy 0.0700 worse")
    assert why["pruned-fp32"] == "ranked 2 of 3: slower, 1.60x the winner's latency"
    assert why["fp32"] == "ranked 3 of 3: slower, 2.00x the winner's latency"
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
    assert why["fp32"].startswith("winner: fastest of 1 variants")


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


def _v(p50_ms: float, size: int, noise: float = 0.0, accuracy: float = 0.97) -> VariantResult:
    return VariantResult(accuracy, {"accuracy": accuracy}, size, p50_ms, p50_ms, 1.0, "cpu", noise)


def test_latencies_within_the_noise_tie_and_the_smaller_file_wins() -> None:
    """The issue's case: two pruned variants trade places within timing noise; whichever
    is a hair faster in this run, the 16 KB one wins, so the choice does not flip."""
    for small_p50, big_p50 in ((0.0207, 0.0200), (0.0200, 0.0207)):
        results = {
            "fp32": _v(0.05, 120_000, 0.02),
            "pruned-fp32": _v(big_p50, 55_000, 0.04),
            "pruned-fp32@0.75": _v(small_p50, 16_000, 0.03),
        }
        assert choose_winner(results, 0.01, noise_floor=0.0) == "pruned-fp32@0.75"
    # Beyond the noise the faster one wins, whatever its size.
    results = {
        "fp32": _v(0.05, 120_000),
        "pruned-fp32": _v(0.020, 55_000, 0.02),
        "pruned-fp32@0.75": _v(0.030, 16_000, 0.02),
    }
    assert choose_winner(results, 0.01, noise_floor=0.05) == "pruned-fp32"


def test_the_noise_floor_makes_close_latencies_a_tie_even_when_rounds_agree() -> None:
    results = {"fp32": _v(0.0204, 60_000), "int8": _v(0.0200, 90_000)}
    assert choose_winner(results, 0.01, noise_floor=0.0) == "int8"
    assert choose_winner(results, 0.01, noise_floor=0.05) == "fp32"


def test_ranking_orders_every_candidate_and_names_ties() -> None:
    results = {
        "fp32": _v(0.050, 120_000, 0.01),
        "int8": _v(0.030, 40_000, 0.01),
        "pruned-fp32": _v(0.020, 55_000, 0.04),
        "pruned-fp32@0.75": _v(0.0205, 16_000, 0.03),
        "pruned-int8": _v(0.020, 9_000, accuracy=0.80),  # over max_drop: not a candidate
    }
    names = candidates(results, 0.01)
    assert "pruned-int8" not in names
    ranking = rank(results, names, noise_floor=0.05)
    assert [r.name for r in ranking] == ["pruned-fp32@0.75", "pruned-fp32", "int8", "fp32"]
    assert ranking[0].tied_with == ("pruned-fp32",)
    why = verdicts(results, "pruned-fp32@0.75", RULES, qualified=names, ranking=ranking)
    assert why["pruned-fp32@0.75"].startswith("winner: smallest file of 2 variants tied")
    assert why["pruned-fp32"] == (
        "ranked 2 of 4: ties the winner's latency within the timing noise (5%), "
        "but its file is larger (53.7 KB vs 15.6 KB)"
    )
    assert why["int8"].startswith("ranked 3 of 4: slower, 1.46x")
