"""The shared feedback inbox on a real S3-compatible server (moto on loopback): a reviewer
machine sees every replica's records, a record decided on one machine is never reviewed
on another, and half-uploaded or hostile records on the store are never brought in."""

from __future__ import annotations

import json
from pathlib import Path

from flywheel.core.remote_section import RemoteConfig
from flywheel.families.base import StoredInstance
from flywheel.feedback.shared_inbox import SharedInbox
from flywheel.remote.objects import ObjectStore
from flywheel.serving.remote_feedback import RemoteFeedbackStore


def _replica_records(tmp_path: Path, remote: RemoteConfig) -> list[str]:
    ids = []
    for r in (0, 1):
        store = RemoteFeedbackStore(tmp_path / f"replica-{r}" / "inbox", remote)
        ids.append(store.save("3", StoredInstance(f"png-{r}".encode(), ".png"), {"sender": "s"}))
    return ids


def test_a_reviewer_sees_every_replica_and_decides_once(
    tmp_path: Path, remote: RemoteConfig
) -> None:
    ids = _replica_records(tmp_path, remote)
    here = SharedInbox(tmp_path / "reviewer" / "inbox", remote)
    records = {r.id: r for r in here.records()}
    assert set(records) == set(ids)
    assert records[ids[1]].instance_file.read_bytes() == b"png-1"
    assert records[ids[1]].meta["file"] == f"3/{ids[1]}.png"

    there = SharedInbox(tmp_path / "other-reviewer" / "inbox", remote)
    assert {r.id for r in there.records()} == set(ids)
    here.remove(records[ids[0]], "accepted", data_file="3/x.png")
    # Decided here: gone from the other machine's inbox at its next look, files and all.
    assert [r.id for r in there.records()] == [ids[1]]
    assert not list((tmp_path / "other-reviewer" / "inbox").glob(f"*/{ids[0]}*"))
    assert [r.id for r in here.records()] == [ids[1]]  # and never brought back here
    store = ObjectStore(remote)
    decision = store.get(store.key("feedback-reviewed", f"{ids[0]}.json"), "t")
    assert decision is not None and json.loads(decision.body)["decision"] == "accepted"


def test_half_uploaded_and_hostile_records_stay_out(tmp_path: Path, remote: RemoteConfig) -> None:
    store = ObjectStore(remote)
    half = "a" * 32  # the sidecar is up, the instance (the commit point) not yet
    store.put(store.key("feedback", "3", f"{half}.json"), b'{"id": "%s"}' % half.encode(), "t")
    liar = "b" * 32  # a sidecar naming some other file
    sidecar = json.dumps({"id": liar, "file": "../../etc/passwd"}).encode()
    store.put(store.key("feedback", "3", f"{liar}.json"), sidecar, "t")
    store.put(store.key("feedback", "3", f"{liar}.png"), b"png", "t")
    escape = "c" * 32  # a folder that would leave the inbox
    store.put(store.key("feedback", "..", f"{escape}.json"), b"{}", "t")
    store.put(store.key("feedback", "..", f"{escape}.png"), b"png", "t")
    inbox = SharedInbox(tmp_path / "reviewer" / "inbox", remote)
    assert inbox.records() == []
    assert not (tmp_path / "reviewer" / "inbox").exists() or not any(
        (tmp_path / "reviewer" / "inbox").rglob("*.png")
    )
    assert not (tmp_path / "reviewer" / f"{escape}.png").exists()
