"""The registry on a real S3-compatible server (moto on loopback): every "machine" is its
own local mirror folder talking only to the bucket."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import boto3
import pytest
from tests.moto_s3 import S3Server

from flywheel.core.errors import AliasMoved, IntegrityError, RegistryError, RemoteUnavailable
from flywheel.core.remote_section import RemoteConfig
from flywheel.monitor.reference import load_reference
from flywheel.release.registry import ModelCard, open_registry
from flywheel.release.registry.remote import RemoteRegistry
from flywheel.release.registry.store import REFERENCE_FILE
from flywheel.remote.objects import ObjectStore

_FIELDS = {
    "task": "image_classification",
    "labels": ("0", "1"),
    "data_hash": "abc.dir",
    "params_hash": "p",
    "code_version": "test",
    "variant": "int8",
    "recipe": {"steps": ["export"]},
    "metrics": {"accuracy": 0.9},
    "params": {},
    "evaluation": {},
}


def _machine(tmp_path: Path, name: str, config: RemoteConfig) -> RemoteRegistry:
    registry = open_registry(tmp_path / name / "registry", config)
    assert isinstance(registry, RemoteRegistry)
    return registry


def _register(reg: RemoteRegistry, tmp_path: Path, payload: bytes) -> str:
    model = tmp_path / f"model-{payload.hex()}.onnx"
    model.write_bytes(payload)
    spec = tmp_path / "spec.json"
    spec.write_text("{}")
    return reg.register(model, spec, _FIELDS).version


def test_versions_alias_and_rollback_are_shared(tmp_path: Path, remote: RemoteConfig) -> None:
    a, b = _machine(tmp_path, "a", remote), _machine(tmp_path, "b", remote)
    v1, v2 = _register(a, tmp_path, b"one"), _register(a, tmp_path, b"two")
    assert (v1, v2) == ("v0001", "v0002")
    a.promote(v1)
    a.promote(v2)
    assert b.versions() == [v1, v2] and b.production_version() == v2
    assert not b.version_dir(v2).exists()  # nothing downloaded before it is needed
    assert b.verify(v2).sha256 == a.card(v2).sha256
    assert b.model_path(v2).read_bytes() == b"two"
    assert b.rollback().version == v1  # B rolls back what A promoted
    assert a.production_version() == v1
    assert a.status(v2, v1) == "retired"
    assert (a.alias_path.exists(), b.alias_path.exists()) == (True, True)  # local mirrors


def test_a_claimed_but_unpublished_version_is_invisible(
    tmp_path: Path, remote: RemoteConfig
) -> None:
    store = ObjectStore(remote)
    # A machine died after its model upload claimed v0001, before the card published it.
    store.put(store.key("registry/versions/v0001/model.onnx"), b"half", "t", create_only=True)
    reg = _machine(tmp_path, "a", remote)
    assert reg.versions() == []
    assert _register(reg, tmp_path, b"whole") == "v0002"


def _deploy(
    reg: RemoteRegistry,
    version: str,
    both_read: threading.Barrier,
    outcome: dict[str, BaseException | str],
    name: str,
) -> None:
    try:
        with reg.lock():
            reg.production()  # what the gate measured against
            both_read.wait(timeout=60)
            reg.promote(version)
        outcome[name] = "won"
    except BaseException as err:  # the loser's refusal is the point
        outcome[name] = err


def test_two_promoters_racing_exactly_one_wins(tmp_path: Path, remote: RemoteConfig) -> None:
    a, b = _machine(tmp_path, "a", remote), _machine(tmp_path, "b", remote)
    for round_ in range(4):
        va = _register(a, tmp_path, f"a{round_}".encode())
        vb = _register(b, tmp_path, f"b{round_}".encode())
        both_read = threading.Barrier(2)
        outcome: dict[str, BaseException | str] = {}
        threads = [
            threading.Thread(target=_deploy, args=(a, va, both_read, outcome, "a")),
            threading.Thread(target=_deploy, args=(b, vb, both_read, outcome, "b")),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        winners = [n for n, o in outcome.items() if o == "won"]
        losers = [o for o in outcome.values() if o != "won"]
        assert len(winners) == 1 and len(losers) == 1, outcome
        assert isinstance(losers[0], AliasMoved), losers[0]
        assert "moved to" in str(losers[0]) and "nothing was promoted" in str(losers[0])
        assert a.production_version() == (va if winners == ["a"] else vb)


def test_corrupted_model_refused_by_sha(tmp_path: Path, remote: RemoteConfig) -> None:
    a = _machine(tmp_path, "a", remote)
    v1 = _register(a, tmp_path, b"genuine")
    a.promote(v1)
    store = ObjectStore(remote)
    boto3.client("s3", endpoint_url=remote.endpoint_url).put_object(
        Bucket=store.bucket, Key=store.key(f"registry/versions/{v1}/model.onnx"), Body=b"evil"
    )
    b = _machine(tmp_path, "b", remote)
    with pytest.raises(IntegrityError, match=r"sha256 .* its card says .*refused"):
        b.verify(v1)
    assert not b.version_dir(v1).exists()
    assert list(b.versions_dir.iterdir()) == []  # no staging left either


def test_store_stopped_mid_register_fails_cleanly_and_rerun_completes(
    tmp_path: Path,
    remote: RemoteConfig,
    s3_server: S3Server,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reg = _machine(tmp_path, "a", remote)
    real_put = ObjectStore.put
    calls = []

    def put_then_die(self: ObjectStore, key: str, *args: object, **kw: object) -> str:
        calls.append(key)
        if len(calls) == 2:  # the model is up, the store goes away before the spec
            s3_server.stop()
        return real_put(self, key, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(ObjectStore, "put", put_then_die)
    try:
        with pytest.raises(RemoteUnavailable, match=r"cannot reach the remote .*uploading v0001"):
            _register(reg, tmp_path, b"model")
    finally:
        s3_server.start()
    monkeypatch.setattr(ObjectStore, "put", real_put)
    assert list(reg.versions_dir.iterdir()) == []
    assert reg.versions() == []  # the half-pushed version is not one
    version = _register(reg, tmp_path, b"model")
    assert reg.versions() == [version] and reg.verify(version).version == "v0002"


def test_a_local_version_that_is_not_the_remote_one_is_refused(
    tmp_path: Path, remote: RemoteConfig
) -> None:
    from flywheel.core.errors import RegistryError
    from flywheel.release.registry import Registry

    a = _machine(tmp_path, "a", remote)
    a.promote(_register(a, tmp_path, b"team model"))
    # Machine B kept a local-only registry before joining the team: its v0001 is another model.
    (tmp_path / "own.onnx").write_bytes(b"own model")
    Registry(tmp_path / "b" / "registry").register(
        tmp_path / "own.onnx", tmp_path / "spec.json", _FIELDS
    )
    b = _machine(tmp_path, "b", remote)
    with pytest.raises(RegistryError, match="is not the v0001 on s3://"):
        b.verify("v0001")


def _with_reference(staging: Path, card: ModelCard) -> None:
    (staging / REFERENCE_FILE).write_text(json.dumps({"model_version": card.version}))


def test_the_reference_profile_is_published_before_the_card_and_mirrored(
    tmp_path: Path,
    remote: RemoteConfig,
    s3_server: S3Server,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a, b = _machine(tmp_path, "a", remote), _machine(tmp_path, "b", remote)
    (tmp_path / "spec.json").write_text("{}")
    model = tmp_path / "model.onnx"
    model.write_bytes(b"profiled")
    real_put = ObjectStore.put

    def die_before_the_card(self: ObjectStore, key: str, *args: object, **kw: object) -> str:
        if key.endswith("/card.json"):
            s3_server.stop()
        return real_put(self, key, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(ObjectStore, "put", die_before_the_card)
    try:
        with pytest.raises(RemoteUnavailable):
            a.register(model, tmp_path / "spec.json", _FIELDS, extras=_with_reference)
    finally:
        s3_server.start()
    monkeypatch.setattr(ObjectStore, "put", real_put)
    store = ObjectStore(remote)
    uploaded = store.keys(store.key("registry", "versions") + "/", "t")
    assert [k.rsplit("/", 2)[-2:] for k in sorted(uploaded)] == [
        ["v0001", "model.onnx"],
        ["v0001", "preprocessing.json"],
        ["v0001", "reference.json"],
    ]
    assert b.versions() == []  # no card yet: not a version, its profile with it

    version = a.register(model, tmp_path / "spec.json", _FIELDS, extras=_with_reference).version
    a.promote(version)
    assert version == "v0002"
    b.fetch_version(b.production_version() or "")
    # Machine B's mirror holds the profile where the monitor looks for it.
    assert load_reference(b.version_dir(version)) == {"model_version": version}
    assert load_reference(a.version_dir(version)) == {"model_version": version}


def test_a_corrupted_reference_profile_is_refused_by_sha_like_the_model(
    tmp_path: Path, remote: RemoteConfig
) -> None:
    a = _machine(tmp_path, "a", remote)
    (tmp_path / "spec.json").write_text("{}")
    (tmp_path / "model.onnx").write_bytes(b"profiled")
    card = a.register(tmp_path / "model.onnx", tmp_path / "spec.json", _FIELDS, _with_reference)
    assert set(card.files) == {REFERENCE_FILE}
    a.promote(card.version)
    assert a.verify(card.version).files == card.files  # the promoter's own copy is whole
    store = ObjectStore(remote)
    key = store.key(f"registry/versions/{card.version}/{REFERENCE_FILE}")
    boto3.client("s3", endpoint_url=remote.endpoint_url).put_object(
        Bucket=store.bucket, Key=key, Body=b'{"model_version": "forged"}'
    )
    b = _machine(tmp_path, "b", remote)
    with pytest.raises(IntegrityError, match=r"reference\.json has sha256 .* its card says"):
        b.verify(card.version)
    assert list(b.versions_dir.iterdir()) == []  # nothing half-fetched is left to serve


def test_a_remote_registry_belongs_to_one_dataset(remote: RemoteConfig) -> None:
    """Two params files naming one remote.url would share a production alias: the second
    dataset's deploy is refused with the fix; the first keeps its claim."""
    from flywheel.release.registry.ownership import claim

    store = ObjectStore(remote)
    claim(store, "data")
    claim(store, "data")  # its own again: fine
    with pytest.raises(RegistryError, match=r"belongs to dataset 'data', not 'dataY'.*remote\.url"):
        claim(store, "dataY")


def test_a_registry_folder_belongs_to_one_dataset(tmp_path: Path) -> None:
    from flywheel.release.registry.ownership import CLAIM_FILE, claim_folder

    claim_folder(tmp_path / "registry", "data")
    claim_folder(tmp_path / "registry", "data")
    with pytest.raises(RegistryError, match=r"not 'datasets/photos'.*e\.g\. registry/photos"):
        claim_folder(tmp_path / "registry", "datasets/photos")
    assert sorted(p.name for p in (tmp_path / "registry").iterdir()) == [CLAIM_FILE]
