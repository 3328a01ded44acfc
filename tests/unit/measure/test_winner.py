from __future__ import annotations

import pytest

from flywheel.measure.selection import VariantResult, choose_winner


def _r(accuracy: float, p50_ms: float, size: int = 1000) -> VariantResult:
    return VariantResult(
        score=accuracy,
        metrics={"accuracy": accuracy},
        size_bytes=size,
        latency_p50_ms=p50_ms,
        latency_p99_ms=p50_ms * 2,
        throughput_per_s=1000 / p50_ms,
        provider="CPUExecutionProvider",
    )


def test_fastest_variant_within_drop_wins() -> None:
    results = {"fp32": _r(0.97, 1.0), "int8": _r(0.965, 0.4), "pruned-int8": _r(0.962, 0.3)}
    assert choose_winner(results, max_drop=0.01) == "pruned-int8"


def test_accurate_but_slow_beats_fast_but_inaccurate() -> None:
    results = {"fp32": _r(0.97, 1.0), "int8": _r(0.968, 0.8), "pruned-int8": _r(0.90, 0.2)}
    assert choose_winner(results, max_drop=0.01) == "int8"


def test_fp32_wins_when_nothing_else_qualifies() -> None:
    results = {"fp32": _r(0.97, 1.0), "int8": _r(0.95, 0.5), "pruned-int8": _r(0.80, 0.2)}
    assert choose_winner(results, max_drop=0.01) == "fp32"


def test_fp32_wins_when_it_is_fastest() -> None:
    results = {"fp32": _r(0.97, 0.3), "int8": _r(0.97, 0.5)}
    assert choose_winner(results, max_drop=0.01) == "fp32"


def test_drop_boundary_is_inclusive() -> None:
    # 0.97 - 0.01 is 0.9599999999999999 in floats; exactly max_drop lower must still qualify.
    results = {"fp32": _r(0.97, 1.0), "int8": _r(0.96, 0.5)}
    assert choose_winner(results, max_drop=0.01) == "int8"
    assert choose_winner(results, max_drop=0.0) == "fp32"


def test_more_accurate_than_reference_qualifies() -> None:
    results = {"fp32": _r(0.90, 1.0), "int8": _r(0.95, 0.5)}
    assert choose_winner(results, max_drop=0.0) == "int8"


def test_latency_ties_go_to_the_smaller_file() -> None:
    results = {"fp32": _r(0.97, 0.5, size=4000), "a": _r(0.97, 0.5, 2000), "b": _r(0.97, 0.5, 1000)}
    assert choose_winner(results, max_drop=0.01) == "b"


def test_custom_reference_and_missing_reference() -> None:
    results = {"base": _r(0.97, 1.0), "fast": _r(0.90, 0.1)}
    assert choose_winner(results, max_drop=0.01, reference="base") == "base"
    with pytest.raises(KeyError):
        choose_winner(results, max_drop=0.01)


def test_lower_is_better_metrics() -> None:
    # RMSE: the reference is 1.0; 1.05 is 0.05 worse, within a 0.1 drop; 1.2 is not.
    results = {"fp32": _r(1.0, 1.0), "int8": _r(1.05, 0.5), "pruned-int8": _r(1.2, 0.2)}
    assert choose_winner(results, max_drop=0.1, metric="rmse") == "int8"
    assert choose_winner(results, max_drop=0.3, metric="rmse") == "pruned-int8"
