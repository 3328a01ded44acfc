"""The review caps: feedback.max_per_sender / max_per_version bound what one client or one
model version can add; records over a cap stay in the inbox with the cap named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from flywheel.core.workspace import Workspace, open_workspace
from flywheel.families.base import StoredInstance
from flywheel.feedback.inbox import Inbox, Record
from flywheel.feedback.review import _capped, accept
from flywheel.serving.feedback import FeedbackStore


def _ws(tmp_path: Path, **caps: int) -> Workspace:
    raw = {"validate": {"labels": ["a", "b"]}, "feedback": caps}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    return open_workspace(tmp_path / "params.yaml", tmp_path)


def _inbox(ws: Workspace) -> Inbox:
    return Inbox(ws.layout.feedback_inbox or ws.layout.root / "feedback")


def _save(ws: Workspace, sender: str, version: str) -> str:
    store = FeedbackStore(_inbox(ws).folder)
    meta: dict[str, Any] = {"sender": sender, "model_version": version}
    return store.save("a", StoredInstance(b"a corrected instance", ".txt"), meta)


def _accepted_before(ws: Workspace, sender: str, version: str, n: int) -> None:
    """``n`` records of ``sender`` on ``version`` already accepted (in the journal)."""
    ids = {_save(ws, sender, version) for _ in range(n)}
    inbox = _inbox(ws)
    for record in [r for r in inbox.records() if r.id in ids]:
        inbox.remove(record, "accepted", data_file="x", data_hash="h")


def _by_id(records: list[Record]) -> dict[str, Record]:
    return {r.id: r for r in records}


def test_each_cap_counts_what_was_accepted_and_what_this_review_keeps(tmp_path: Path) -> None:
    ws = _ws(tmp_path, max_per_sender=2, max_per_version=3)
    _accepted_before(ws, "s1", "v1", 1)
    s1 = [_save(ws, "s1", "v1") for _ in range(2)]  # room for one more of s1
    s2 = [_save(ws, "s2", "v1") for _ in range(2)]  # v1 has room for two: 1 + s1's + s2's
    s3 = _save(ws, "s3", "v2")
    pending = _by_id(_inbox(ws).records())
    keep, over = _capped(ws, _inbox(ws), [pending[i] for i in [*s1, *s2, s3]])
    assert [r.id for r in keep] == [s1[0], s2[0], s3]
    assert over == {s1[1]: ["feedback.max_per_sender"], s2[1]: ["feedback.max_per_version"]}


def test_zero_means_no_cap(tmp_path: Path) -> None:
    ws = _ws(tmp_path)
    _accepted_before(ws, "s1", "v1", 3)
    ids = [_save(ws, "s1", "v1") for _ in range(3)]
    keep, over = _capped(ws, _inbox(ws), _inbox(ws).records())
    assert sorted(r.id for r in keep) == sorted(ids) and over == {}


def test_records_over_a_cap_stay_in_the_inbox_with_the_cap_named(tmp_path: Path) -> None:
    ws = _ws(tmp_path, max_per_sender=1)
    _accepted_before(ws, "s1", "v1", 1)
    (tmp_path / "data").mkdir()
    late = [_save(ws, "s1", "v2") for _ in range(2)]

    outcome = accept(ws, _inbox(ws).records())

    assert outcome.accepted == [] and outcome.data_hash is None
    assert outcome.failed == {i: ["feedback.max_per_sender"] for i in late}
    listed = {r.id: r.summary() for r in _inbox(ws).records()}
    assert {i: (r["status"], r["failed"]) for i, r in listed.items()} == {
        i: ("failed", ["feedback.max_per_sender"]) for i in late
    }
    assert not list((tmp_path / "data").iterdir())  # nothing merged
    # A failed record is not retried as pending by the next review (flows/monitor.py).
    assert not [r for r in _inbox(ws).records() if r.status == "pending"]
