"""Summary statistics and target checks used by every benchmark."""

from __future__ import annotations

import math

import pytest
from benchmarks.common import percentile, ratio, spread

from benchmarks import targets


def test_spread_reports_median_quartiles_and_extremes() -> None:
    s = spread([5.0, 1.0, 3.0, 2.0, 4.0])
    assert s == {"n": 5, "median": 3.0, "p25": 2.0, "p75": 4.0, "min": 1.0, "max": 5.0}
    assert spread([]) == {"n": 0}
    assert spread([2.0])["median"] == 2.0


def test_percentile_matches_numpy_linear() -> None:
    values = [1.0, 2.0, 3.0, 4.0]
    assert percentile(values, 50) == pytest.approx(2.5)
    assert percentile(values, 99) == pytest.approx(3.97)
    assert math.isnan(percentile([], 50))


def test_ratio_refuses_missing_or_zero() -> None:
    assert ratio(1.0, 4.0) == 0.25
    assert ratio(None, 1.0) is None
    assert ratio(1.0, 0.0) is None
    assert ratio(float("nan"), 1.0) is None


def test_checks_in_both_directions_and_unmeasured() -> None:
    assert targets.check("x", 0.4, 0.5)["met"] is True
    assert targets.check("x", 0.6, 0.5)["met"] is False
    assert targets.check("x", 0.96, 0.95, at_most=False)["met"] is True
    unmeasured = targets.check("x", None, 0.5)
    assert unmeasured["met"] is None and unmeasured["goal"] == "<= 0.5"


def test_either_passes_when_one_bound_holds() -> None:
    share = targets.check("share", 0.3, 0.1)
    seconds = targets.check("seconds", 4.0, 5.0)
    assert targets.either("overhead", share, seconds)["met"] is True
    assert targets.either("overhead", share, targets.check("s", 9.0, 5.0))["met"] is False
    assert targets.either("overhead", share, targets.check("s", None, 5.0))["met"] is None


def test_metric_drop_is_one_point_or_one_percent() -> None:
    assert targets.metric_drop_allowed("accuracy", 0.9) == 0.01
    assert targets.metric_drop_allowed("rmse", 50_000.0) == pytest.approx(500.0)
