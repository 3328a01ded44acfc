"""The prediction log stays within its disk cap, rotates, and reads back newest first."""

from __future__ import annotations

from pathlib import Path

from flywheel.core.loop_sections import MonitorConfig
from flywheel.families.base import StoredInstance
from flywheel.monitor.prediction_log import (
    PredictionLog,
    stored_entry,
    stored_instance,
)


def _record(i: int) -> dict[str, object]:
    return {"kind": "prediction", "id": f"{i:032x}", "prediction": {"value": i}, "pad": "x" * 200}


def test_segments_rotate_and_the_oldest_go_past_the_cap(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, MonitorConfig(log_segment_bytes=2_000, log_max_bytes=6_000))
    for i in range(200):
        log.append([_record(i)])
    segments = sorted(tmp_path.glob("segment-*.jsonl"))
    total = sum(p.stat().st_size for p in segments)
    assert len(segments) >= 3 and all(p.stat().st_size <= 2_000 for p in segments)
    # At most one segment over the cap: the newest is never deleted while written.
    assert total <= 6_000 + 2_000
    newest = [r["id"] for r in log.lines()][:3]
    assert newest == [f"{i:032x}" for i in (199, 198, 197)]
    assert log.find(f"{199:032x}") is not None
    assert log.find(f"{0:032x}") is None  # rotated out
    assert log.find("../etc/passwd") is None


def test_a_torn_last_line_is_skipped_and_recent_splits_kinds(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, MonitorConfig())
    log.append([_record(1), _record(2), {"kind": "feedback", "prediction_id": f"{1:032x}"}])
    with next(tmp_path.glob("segment-*.jsonl")).open("a") as fh:
        fh.write('{"kind": "predic')  # a kill in the middle of a write
    predictions, feedback = log.recent(10)
    assert [p["id"] for p in predictions] == [f"{1:032x}", f"{2:032x}"]
    assert [f["prediction_id"] for f in feedback] == [f"{1:032x}"]
    assert len(log.recent(1)[0]) == 1


def test_sampling_follows_the_rate(tmp_path: Path) -> None:
    never = PredictionLog(tmp_path, MonitorConfig(sample_rate=0.0), seed=1)
    half = PredictionLog(tmp_path, MonitorConfig(sample_rate=0.5), seed=1)
    assert not any(never.sampled() for _ in range(100))
    assert 30 < sum(half.sampled() for _ in range(100)) < 70


def test_stored_forms_round_trip() -> None:
    for stored in (
        StoredInstance(b"\x89PNG\x00", ".png"),
        StoredInstance(b'{"x":1}', ".instance.json"),
    ):
        assert stored_instance(stored_entry(stored)) == stored
