"""``feedback.auto_accept`` through the monitor flow on a real Prefect server: off, the
inbox waits for a person; on, what the suite and the caps pass becomes a new DVC data
version before the monitor looks at the window."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml
from tests.integration.test_monitor_flow import FAMILIES, make_project

from flywheel.datasets.hashing import data_hash
from flywheel.families.base import StoredInstance, canonical_json
from flywheel.feedback.inbox import Inbox
from flywheel.serving.feedback import OBSERVED, FeedbackStore

pytestmark = [pytest.mark.slow]


def test_auto_accept_takes_the_inbox_in_before_monitoring(
    tmp_path: Path, prefect_backend: None
) -> None:
    from flows.monitor import monitor

    from flywheel.pipeline.dvc import init_repository
    from flywheel.stages.validate.suite import save_suite

    ws = make_project(tmp_path, FAMILIES["tabular"], {"auto_accept": False, "max_per_sender": 1})
    init_repository(tmp_path, author="ci")
    save_suite(ws.params, ws.layout)
    inbox = Inbox(ws.layout.feedback_inbox or ws.layout.root / "feedback")
    store = FeedbackStore(inbox.folder)
    meta = {"model_version": "v0001", "sender": "s1"}
    first = store.save(
        1.5, StoredInstance(canonical_json({"x": 0.75}), ".instance.json"), meta, OBSERVED
    )
    time.sleep(0.01)  # the inbox orders records by arrival, to the millisecond
    second = store.save(
        -1.0, StoredInstance(canonical_json({"x": -0.5}), ".instance.json"), meta, OBSERVED
    )
    params = {"params_file": str(tmp_path / "params.yaml"), "project": str(tmp_path)}

    monitor(**params)  # auto_accept off: a person decides
    assert {r.id: r.status for r in inbox.records()} == {first: "pending", second: "pending"}

    raw = yaml.safe_load((tmp_path / "params.yaml").read_text())
    raw["feedback"]["auto_accept"] = True
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    report = monitor(**params)

    assert report["model_version"] == "v0001"  # the monitor still ran after the review
    (part,) = (tmp_path / "table").glob("feedback-*.csv")
    assert "0.75" in part.read_text() and "-0.5" not in part.read_text()
    recorded = yaml.safe_load((tmp_path / "table.dvc").read_text())["outs"][0]["md5"]
    assert recorded == data_hash(tmp_path / "table")
    # Over the sender's cap: left for a person, with the cap named, and not retried.
    (left,) = inbox.records()
    assert (left.id, left.summary()["failed"]) == (second, ["feedback.max_per_sender"])
