"""Feedback records on the team remote (a real moto server on loopback): create-only,
sidecar before instance, and a record the remote did not take is neither kept nor acked."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.moto_s3 import S3Server

from flywheel.core.remote_section import RemoteConfig
from flywheel.families.base import StoredInstance
from flywheel.remote.objects import ObjectStore, PreconditionFailed
from flywheel.serving.remote_feedback import RemoteFeedbackStore
from flywheel.serving.requests import RequestRejectedError


def test_records_land_create_only(tmp_path: Path, remote: RemoteConfig) -> None:
    inbox = RemoteFeedbackStore(tmp_path / "inbox", remote)
    first = inbox.save("3", StoredInstance(b"png-1", ".png"), {"model_version": "v0001"})
    second = inbox.save("3", StoredInstance(b"png-2", ".png"), {"model_version": "v0001"})
    store = ObjectStore(remote)
    keys = set(store.keys(store.key("feedback") + "/", "t"))
    assert keys == {inbox.key("3", f"{r}{s}") for r in (first, second) for s in (".json", ".png")}
    blob = store.get(inbox.key("3", f"{first}.png"), "t")
    assert blob is not None and blob.body == b"png-1"
    with pytest.raises(PreconditionFailed):  # a record is never overwritten
        store.put(inbox.key("3", f"{first}.png"), b"other", "t", create_only=True)
    assert inbox.load(first) is not None


def test_unreachable_remote_refuses_and_keeps_nothing(
    tmp_path: Path, remote: RemoteConfig, s3_server: S3Server
) -> None:
    inbox = RemoteFeedbackStore(tmp_path / "inbox", remote)
    s3_server.stop()
    try:
        with pytest.raises(RequestRejectedError) as err:
            inbox.save("3", StoredInstance(b"png", ".png"), {})
    finally:
        s3_server.start()
    assert err.value.status == 503 and err.value.kind == "remote_unavailable"
    assert list((tmp_path / "inbox" / "3").iterdir()) == []
