"""The team-workers benchmark's arithmetic over run timestamps: wall time, overlap, ratio."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from benchmarks.team_workers import summarise, window

CHANGED = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def _run(name: str, worker: str, start: str, end: str) -> dict[str, str]:
    return {
        "name": name,
        "worker": worker,
        "state_type": "COMPLETED",
        "start_time": f"2026-01-01T12:{start}+00:00",
        "end_time": f"2026-01-01T12:{end}+00:00",
    }


def test_side_by_side_runs_overlap_and_wall_is_the_later_end() -> None:
    w = window(
        [_run("x", "worker-a", "00:05", "01:05"), _run("y", "worker-b", "00:07", "01:20")],
        CHANGED,
    )
    assert w["wall_s"] == 80.0
    assert w["overlap_s"] == 58.0
    assert w["busy_s"] == 133.0
    assert [(r["worker"], r["start_s"], r["end_s"], r["run_s"]) for r in w["runs"]] == [
        ("worker-a", 5.0, 65.0, 60.0),
        ("worker-b", 7.0, 80.0, 73.0),
    ]


def test_one_after_the_other_gives_a_negative_overlap_the_gap() -> None:
    w = window(
        [_run("x", "worker-a", "00:05", "01:05"), _run("y", "worker-a", "01:08", "02:00")],
        CHANGED,
    )
    assert w["wall_s"] == 120.0
    assert w["overlap_s"] == -3.0


def test_a_run_that_never_started_is_refused() -> None:
    run = _run("x", "worker-a", "00:05", "01:05")
    run["start_time"] = None  # type: ignore[assignment]
    with pytest.raises(ValueError, match="no start or end time"):
        window([run], CHANGED)


def test_summary_ratio_is_two_workers_median_over_one_workers() -> None:
    rounds = [
        {"workers": 2, "wall_s": 90.0},
        {"workers": 1, "wall_s": 150.0},
        {"workers": 2, "wall_s": 110.0},
        {"workers": 1, "wall_s": 250.0},
    ]
    s = summarise(rounds)
    assert s["wall_s"]["2-worker"]["median"] == 100.0
    assert s["wall_s"]["1-worker"]["median"] == 200.0
    assert s["wall_ratio_2_vs_1"] == 0.5
    assert summarise([{"workers": 2, "wall_s": 90.0}])["wall_ratio_2_vs_1"] is None


def test_the_report_shows_each_round_and_the_ratio() -> None:
    from benchmarks.team_report import workers_section

    run = {"worker": "worker-a", "run_s": 20.0}
    result = {
        "rounds": [
            {
                "workers": 2,
                "wall_s": 30.0,
                "overlap_s": 18.0,
                "load_average_before": [2.5],
                "runs": [run, {**run, "worker": "worker-b"}],
            },
            {
                "workers": 1,
                "wall_s": 50.0,
                "overlap_s": -9.0,
                "load_average_before": [2.0],
                "runs": [run, run],
            },
        ],
        "wall_s": {"1-worker": {"median": 50.0}, "2-worker": {"median": 30.0}},
        "wall_ratio_2_vs_1": 0.6,
    }
    text = "\n".join(workers_section(result))
    assert "| 2 | 30.0 | 18.0 | worker-a, worker-b | 20.0, 20.0 | 2.5 |" in text
    assert "| 1 | 50.0 | -9.0 | worker-a, worker-a |" in text
    assert "ratio 2 workers / 1 worker: 0.6" in text
    assert "No results" in "\n".join(workers_section(None))
