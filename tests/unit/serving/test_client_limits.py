"""What the server refuses before a request reaches the model: its limits from params and
the card, the decode pool's bound, JSON and output checks, and the feedback quotas."""

from __future__ import annotations

import asyncio
import json
import re
import threading
from pathlib import Path
from typing import Any

import pytest

from flywheel.core.service_sections import ServeConfig
from flywheel.families.base import StoredInstance
from flywheel.release.predictor import Prediction
from flywheel.release.registry import ModelCard
from flywheel.serving import feedback_quota
from flywheel.serving.batcher import BatchResult
from flywheel.serving.decoders import instance_limits
from flywheel.serving.decoding import DecodePool
from flywheel.serving.feedback import FeedbackStore
from flywheel.serving.feedback_quota import FeedbackQuota, sender_id
from flywheel.serving.requests import RequestRejectedError, parse_json, prediction_body


def card(params: dict[str, Any]) -> ModelCard:
    return ModelCard(
        version="v0001",
        created_at="now",
        task="image_classification",
        labels=("a",),
        data_hash="d",
        params_hash="p",
        code_version="c",
        variant="fp32",
        recipe={},
        metrics={},
        size_bytes=1,
        sha256="0" * 64,
        params=params,
        evaluation={},
    )


def test_image_formats_default_to_what_the_model_was_validated_with() -> None:
    validated = card({"validate": {"allowed_formats": ["png", "JPEG"]}})
    assert instance_limits(ServeConfig(), validated).image_formats == ("PNG", "JPEG")
    explicit = ServeConfig(image_formats=("PNG",))
    assert instance_limits(explicit, validated).image_formats == ("PNG",)
    assert instance_limits(ServeConfig(), card({})).image_formats == ("PNG",)
    with pytest.raises(ValueError, match="image_formats is empty"):
        ServeConfig(image_formats=())


def test_the_decode_pool_runs_off_the_loop_and_refuses_past_its_bound() -> None:
    async def scenario() -> tuple[str, int]:
        pool = DecodePool(threads=1, max_in_flight=2)
        pool.start()
        try:
            with pool.slot(), pool.slot(), pytest.raises(RequestRejectedError) as refused:
                pool.slot().__enter__()
            assert refused.value.status == 503 and refused.value.headers == {"Retry-After": "1"}
            assert "serve.max_decoding" in refused.value.message
            with pool.slot():
                name = await pool.run(lambda: threading.current_thread().name)
            return name, pool.in_flight
        finally:
            pool.close()

    name, in_flight = asyncio.run(scenario())
    assert name.startswith("flywheel-decode") and in_flight == 0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"a": "\xff"}', "not valid UTF-8 (byte 7)"),
        (b'{"a": ', "not valid JSON: Expecting value at line 1 column 7"),
        (b"[" + b"9" * 5000 + b"]", "a number with too many digits"),
        (b"[1e400]", "out of range"),
        (b"[NaN]", "NaN is not valid JSON"),
    ],
)
def test_json_refusals_say_what_is_wrong_in_our_words(body: bytes, message: str) -> None:
    with pytest.raises(RequestRejectedError, match=re.escape(message)) as refused:
        parse_json(body)
    assert refused.value.status == 400 and "codec" not in refused.value.message


def test_a_non_finite_output_is_a_422_not_a_500() -> None:
    def result(value: float) -> BatchResult:
        return BatchResult([Prediction({"value": value})], "v0001", 1, 0.0, 0.0)

    assert prediction_body(result(1.5))[0]["predictions"] == [{"value": 1.5}]
    with pytest.raises(RequestRejectedError) as refused:
        prediction_body(result(float("inf")))
    assert refused.value.status == 422 and "instance 0" in refused.value.message


def test_senders_are_hashes_and_only_checked_tokens_count() -> None:
    anonymous = sender_id("10.0.0.1", None)
    assert len(anonymous) == 24 and "10.0.0.1" not in anonymous
    assert sender_id("10.0.0.1", "t1") != anonymous != sender_id("10.0.0.2", None)
    assert sender_id("10.0.0.1", "t1") != sender_id("10.0.0.1", "t2")


def _save(store: FeedbackStore, quota: FeedbackQuota, sender: str, size: int = 10) -> str:
    stored = StoredInstance(b"x" * size, ".instance.json")
    with quota.admit(sender, len(stored.data)):
        return store.save("a", stored, {"sender": sender})


def test_feedback_quotas_per_inbox_and_per_sender(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve = ServeConfig(feedback_max_records=4, feedback_max_per_sender=2)
    inbox = tmp_path / "inbox"
    store, quota = FeedbackStore(inbox), FeedbackQuota(inbox, serve)
    _save(store, quota, "alice")
    _save(store, quota, "alice")
    with pytest.raises(RequestRejectedError, match="feedback_max_per_sender") as refused:
        _save(store, quota, "alice")
    assert refused.value.status == 429
    _save(store, quota, "bob")
    _save(store, quota, "carol")
    with pytest.raises(RequestRejectedError, match="feedback_max_records"):
        _save(store, quota, "dave")
    # A new server counts what the inbox already holds, per sender too.
    restarted = FeedbackQuota(inbox, serve)
    with pytest.raises(RequestRejectedError, match="holds 4 records"):
        _save(store, restarted, "erin")
    roomier = FeedbackQuota(inbox, ServeConfig(feedback_max_records=10, feedback_max_per_sender=2))
    with pytest.raises(RequestRejectedError, match="this sender has 2 records"):
        _save(store, roomier, "alice")
    # A review takes alice's records out: the next refusal counts again and finds room.
    for sidecar in (inbox / "a").glob("*.json"):
        meta = {} if sidecar.name.endswith(".instance.json") else json.loads(sidecar.read_text())
        if meta.get("sender") == "alice":
            (inbox / meta["file"]).unlink()
            sidecar.unlink()
    monkeypatch.setattr(feedback_quota, "_RECOUNT_S", 0.0)
    _save(store, restarted, "alice")


def test_feedback_quota_on_stored_bytes(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    store, quota = FeedbackStore(inbox), FeedbackQuota(inbox, ServeConfig(feedback_max_bytes=15))
    _save(store, quota, "alice", size=10)
    with pytest.raises(RequestRejectedError, match="holds 10 bytes"):
        _save(store, quota, "bob", size=10)
