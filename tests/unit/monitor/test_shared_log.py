"""The prediction log on the team remote (a real moto server on loopback): replicas ship
complete lines create-only, a restart ships on without repeating, a dead store keeps the
lines for the next try, and any machine reads every replica's log newest first."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.moto_s3 import S3Server

from flywheel.core.errors import RemoteError
from flywheel.core.loop_sections import MonitorConfig
from flywheel.core.remote_section import RemoteConfig
from flywheel.monitor.prediction_log import PredictionLog
from flywheel.monitor.shared_log import LogShipper, SharedPredictionLog, replica_name
from flywheel.remote.objects import ObjectStore

SMALL = MonitorConfig(log_segment_bytes=1_500, log_max_bytes=100_000)


def _record(i: int) -> dict[str, object]:
    return {"kind": "prediction", "id": f"{i:032x}", "prediction": {"value": i}, "pad": "x" * 90}


def _ids(records: list[dict[str, object]]) -> list[int]:
    return [int(str(r["id"]), 16) for r in records]


def _chunks(store: ObjectStore) -> list[str]:
    return store.keys(store.key("predictions") + "/", "t")


def test_complete_lines_ship_once_and_a_restart_ships_on(tmp_path: Path, remote: RemoteConfig):
    log, store = PredictionLog(tmp_path / "a", SMALL), ObjectStore(remote)
    for i in range(30):  # several segments
        log.append([_record(i)])
    with log.segments()[-1].open("a") as fh:
        fh.write('{"kind": "predic')  # a write in progress: not shipped yet
    shipped = LogShipper(log, store).ship()
    assert shipped == sum(p.stat().st_size for p in log.segments()) - len('{"kind": "predic')
    assert len(_chunks(store)) == len(log.segments())
    assert LogShipper(log, store).ship() == 0  # a restarted replica: the remote is up to date

    with log.segments()[-1].open("a") as fh:
        fh.write('tion", "id": "' + "f" * 32 + '"}\n')  # the torn line completed
    log.append([_record(30)])
    assert LogShipper(log, store).ship() > 0
    shared = SharedPredictionLog(store, tmp_path / "cache", 10**6)
    ids = [r.get("id") for r in shared.lines()]
    assert ids[:2] == [f"{30:032x}", "f" * 32]
    assert sorted(_ids([r for r in shared.lines() if r["id"] != "f" * 32])) == list(range(31))
    assert len(ids) == len(set(ids)) == 32  # nothing shipped twice


def test_every_replica_is_read_newest_first(tmp_path: Path, remote: RemoteConfig) -> None:
    store = ObjectStore(remote)
    logs = [PredictionLog(tmp_path / f"replica-{r}", SMALL) for r in (0, 1)]
    shippers = [LogShipper(log, store) for log in logs]
    assert shippers[0].replica != shippers[1].replica
    for i in range(6):
        logs[i % 2].append([_record(i)])
        shippers[i % 2].ship()
    shared = SharedPredictionLog(store, tmp_path / "cache", 10**6)
    assert _ids(list(shared.lines())) == [5, 4, 3, 2, 1, 0]
    predictions, _ = shared.recent(4)
    assert _ids(predictions) == [2, 3, 4, 5]
    assert shared.find(f"{1:032x}") is not None and shared.find("nope") is None


def test_a_dead_store_keeps_the_lines_for_the_next_try(
    tmp_path: Path, remote: RemoteConfig, s3_server: S3Server
) -> None:
    log, store = PredictionLog(tmp_path / "a", SMALL), ObjectStore(remote)
    shipper = LogShipper(log, store)
    log.append([_record(1)])
    assert shipper.ship() > 0
    log.append([_record(2)])
    s3_server.stop()
    try:
        with pytest.raises(RemoteError, match="shipping the prediction log"):
            shipper.ship()
    finally:
        s3_server.start()
    assert shipper.ship() > 0
    assert _ids(list(SharedPredictionLog(store, tmp_path / "c", 10**6).lines())) == [2, 1]


def test_the_cache_follows_the_remote(tmp_path: Path, remote: RemoteConfig) -> None:
    log, store = PredictionLog(tmp_path / "a", SMALL), ObjectStore(remote)
    log.append([_record(1)])
    LogShipper(log, store).ship()
    shared = SharedPredictionLog(store, tmp_path / "cache", 10**6)
    assert _ids(list(shared.lines())) == [1]
    assert len(list((tmp_path / "cache").iterdir())) == 1
    store.client.delete_object(Bucket=store.bucket, Key=_chunks(store)[0])
    assert list(shared.lines()) == []
    assert list((tmp_path / "cache").iterdir()) == []


def test_the_replica_name_is_kept(tmp_path: Path) -> None:
    name = replica_name(tmp_path / "log")
    assert name == replica_name(tmp_path / "log") != replica_name(tmp_path / "other")


def test_a_read_stops_after_its_byte_budget(tmp_path: Path, remote: RemoteConfig) -> None:
    log, store = PredictionLog(tmp_path / "a", SMALL), ObjectStore(remote)
    shipper = LogShipper(log, store)
    for i in range(5):
        log.append([_record(i)])
        shipper.ship()  # one chunk per line
    one_chunk = len(json.dumps(_record(0), separators=(",", ":"))) + 1
    shared = SharedPredictionLog(store, tmp_path / "cache", max_bytes=2 * one_chunk)
    assert _ids(list(shared.lines())) == [4, 3]  # the newest two chunks only
    assert shared.find(f"{0:032x}") is None


def test_the_remote_keeps_what_the_replica_keeps(tmp_path: Path, remote: RemoteConfig) -> None:
    """Chunks of segments the replica's log rotated away are deleted from the remote."""
    capped = MonitorConfig(log_segment_bytes=1_000, log_max_bytes=3_000)
    log, store = PredictionLog(tmp_path / "a", capped), ObjectStore(remote)
    shipper = LogShipper(log, store)
    for i in range(60):
        log.append([_record(i)])
        shipper.ship()
    held = {int(p.name[8:20]) for p in log.segments()}
    on_remote = {int(k.rsplit("/", 1)[-1].split("-")[1]) for k in _chunks(store)}
    assert on_remote == held and len(held) <= 4
    shared = SharedPredictionLog(store, tmp_path / "cache", 10**6)
    assert _ids(list(shared.lines()))[:3] == [59, 58, 57]
    assert LogShipper(log, store).ship() == 0  # a restart ships nothing again
