"""The S3 client against a real moto server on loopback: conditional writes and the
one-line errors for a missing bucket, a dead endpoint and bad settings."""

from __future__ import annotations

import pytest
from tests.moto_s3 import S3Server

from flywheel.core.config import parse_params
from flywheel.core.errors import ConfigError, RemoteError, RemoteUnavailable
from flywheel.core.remote_section import RemoteConfig
from flywheel.remote.objects import Blob, ObjectStore, PreconditionFailed


def test_create_only_and_compare_and_swap(remote: RemoteConfig) -> None:
    store = ObjectStore(remote)
    key = store.key("alias")
    assert key.startswith("team/")
    first = store.put(key, b"a-1", "test", create_only=True)
    with pytest.raises(PreconditionFailed):
        store.put(key, b"a-2", "test", create_only=True)
    second = store.put(key, b"b-1", "test", if_match=first)
    with pytest.raises(PreconditionFailed):
        store.put(key, b"c-1", "test", if_match=first)  # stale: someone moved it
    blob = store.get(key, "test")
    assert blob is not None and (blob.body, blob.etag) == (b"b-1", second)
    assert store.get(key, "test", if_none_match=second) == Blob(b"", second, unchanged=True)
    assert store.etag(key, "test") == second
    assert store.get(store.key("absent"), "test") is None
    assert store.keys(store.key(""), "test") == [key]


def test_missing_bucket_names_url_and_operation(remote: RemoteConfig) -> None:
    store = ObjectStore(remote.model_copy(update={"url": "s3://no-such-bucket/x"}))
    with pytest.raises(RemoteError, match=r"bucket 'no-such-bucket'.*checking the bucket"):
        store.ping()


def test_unreachable_endpoint_is_one_transient_line(remote: RemoteConfig) -> None:
    dead = remote.model_copy(update={"endpoint_url": "http://127.0.0.1:9"})
    with pytest.raises(RemoteUnavailable) as err:
        ObjectStore(dead).get("team/x", "reading the production alias")
    message = str(err.value)
    assert "\n" not in message
    assert remote.url in message and "127.0.0.1:9" in message
    assert "reading the production alias" in message
    assert "testing" not in message  # the credentials never show


@pytest.mark.parametrize(
    ("section", "why"),
    [
        ({"url": "http://bucket/x"}, "not an s3://bucket/prefix URL"),
        ({"url": "s3://key:secret@bucket/x"}, "must not hold credentials"),
        ({"url": "s3://b/x", "endpoint_url": "ftp://h"}, "not an http"),
        ({"url": "s3://b/x", "endpoint_url": "http://u:p@h:1"}, "must not hold credentials"),
    ],
)
def test_bad_remote_settings_are_refused(raw_params: dict, section: dict, why: str) -> None:
    with pytest.raises(ConfigError, match=why):
        parse_params({**raw_params, "remote": section})


def test_remote_section_defaults_to_local() -> None:
    config = RemoteConfig()
    assert not config.enabled
    parsed = RemoteConfig(url="s3://team-bucket/some/prefix/")
    assert (parsed.bucket, parsed.prefix, parsed.url) == (
        "team-bucket",
        "some/prefix",
        "s3://team-bucket/some/prefix",
    )


def test_a_store_that_dies_mid_transfer_cuts_the_connection(
    remote: RemoteConfig, s3_server: S3Server
) -> None:
    """The test rig itself: after the armed writes the store is gone, mid-request."""
    store = ObjectStore(remote)
    s3_server.die_after_writes(2)
    store.put(store.key("a"), b"1", "t")
    store.put(store.key("b"), b"2", "t")
    try:
        with pytest.raises(RemoteUnavailable, match="cannot reach the remote"):
            store.put(store.key("c"), b"3", "t")
        assert s3_server.died.wait(30)
    finally:
        s3_server.start()
    assert sorted(store.keys(store.key("") + "/", "t")) == [store.key("a"), store.key("b")]
