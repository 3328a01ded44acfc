from __future__ import annotations

import json
import multiprocessing as mp
from pathlib import Path
from typing import Any

import pytest

from flywheel.core.errors import IntegrityError, RegistryError
from flywheel.release.registry import Registry


def _fields(**over: object) -> dict:
    base = {
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
    base.update(over)
    return base


def _register(reg: Registry, tmp_path: Path, payload: bytes) -> str:
    model = tmp_path / f"m-{len(reg.versions())}.onnx"
    model.write_bytes(payload)
    spec = tmp_path / "spec.json"
    spec.write_text("{}")
    return reg.register(model, spec, _fields()).version


def test_register_promote_rollback(tmp_path: Path) -> None:
    reg = Registry(tmp_path / "registry")
    assert reg.production() is None
    v1 = _register(reg, tmp_path, b"one")
    v2 = _register(reg, tmp_path, b"two")
    assert (v1, v2) == ("v0001", "v0002")
    reg.promote(v1)
    reg.promote(v2)
    assert reg.production_version() == v2
    assert reg.rollback().version == v1
    assert reg.production_version() == v1
    assert (reg.version_dir(v2) / "model.onnx").read_bytes() == b"two"  # the old version stays
    with pytest.raises(RegistryError, match="nothing to roll back"):
        reg.rollback()


def test_card_records_sha_and_size(tmp_path: Path) -> None:
    reg = Registry(tmp_path / "registry")
    card = reg.card(_register(reg, tmp_path, b"model-bytes"))
    assert card.size_bytes == len(b"model-bytes")
    assert len(card.sha256) == 64
    saved = json.loads((reg.version_dir(card.version) / "card.json").read_text())
    assert saved["sha256"] == card.sha256


def test_tampered_model_is_never_promoted(tmp_path: Path) -> None:
    reg = Registry(tmp_path / "registry")
    v1 = _register(reg, tmp_path, b"good")
    reg.promote(v1)
    v2 = _register(reg, tmp_path, b"good-two")
    reg.model_path(v2).write_bytes(b"evil")
    with pytest.raises(IntegrityError, match="does not match"):
        reg.promote(v2)
    assert reg.production_version() == v1


def test_bad_version_names(tmp_path: Path) -> None:
    reg = Registry(tmp_path)
    with pytest.raises(RegistryError, match="not a version"):
        reg.version_dir("../../etc")
    with pytest.raises(RegistryError, match="not found"):
        reg.card("v0042")


def _register_many(root: str, tmp: str, n: int, tag: int) -> None:
    reg = Registry(root)
    for i in range(n):
        model = Path(tmp) / f"m-{tag}-{i}.onnx"
        model.write_bytes(f"{tag}-{i}".encode())
        spec = Path(tmp) / f"s-{tag}-{i}.json"
        spec.write_text("{}")
        reg.promote(reg.register(model, spec, _fields()).version)


def test_concurrent_registrations_never_collide(tmp_path: Path) -> None:
    root = str(tmp_path / "registry")
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_register_many, args=(root, str(tmp_path), 5, t)) for t in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)  # a spawned interpreter imports the registry afresh: slow when loaded
        assert p.exitcode == 0
    reg = Registry(root)
    assert reg.versions() == [f"v{i:04d}" for i in range(1, 16)]
    assert len({c.sha256 for c in reg.cards()}) == 15
    alias = json.loads(reg.alias_path.read_text())
    assert alias["version"] in reg.versions()
    assert len(alias["history"]) == 15


def _promoted(reg: Registry, tmp_path: Path, payload: bytes) -> str:
    version = _register(reg, tmp_path, payload)
    reg.promote(version)
    reg.mark_verified(version)
    return version


def test_a_corrupt_alias_is_a_typed_error_and_rollback_restores_the_last_good(
    tmp_path: Path,
) -> None:
    reg = Registry(tmp_path / "registry")
    v1 = _promoted(reg, tmp_path, b"one")
    v2 = _promoted(reg, tmp_path, b"two")
    reg.alias_path.write_text('{"version": "v00')  # half a file
    with pytest.raises(RegistryError, match=r"corrupt.*flywheel rollback.*last good: v0002"):
        reg.production()
    assert reg.last_good() is not None and reg.last_good().version == v2  # type: ignore[union-attr]
    assert reg.rollback().version == v2
    assert reg.production_version() == v2
    assert json.loads(reg.alias_path.read_text())["history"] == [v1, v2]


def test_a_corrupt_card_is_a_typed_error_and_listing_skips_it(tmp_path: Path) -> None:
    reg = Registry(tmp_path / "registry")
    v1 = _register(reg, tmp_path, b"one")
    v2 = _register(reg, tmp_path, b"two")
    (reg.version_dir(v1) / "card.json").write_text("{ not json")
    with pytest.raises(RegistryError, match=r"card\.json is corrupt.*restore it"):
        reg.card(v1)
    assert [c.version for c in reg.cards()] == [v2]


def test_retiring_production_moves_it_back_and_a_first_version_leaves_none(
    tmp_path: Path,
) -> None:
    reg = Registry(tmp_path / "registry")
    v1 = _promoted(reg, tmp_path, b"one")
    assert reg.retire(v1, "post-promotion check failed") is None
    assert reg.production_version() is None  # a failed first deploy does not stay live
    assert reg.status(v1) == "retired"
    v2 = _promoted(reg, tmp_path, b"two")
    v3 = _register(reg, tmp_path, b"three")
    reg.promote(v3)
    back = reg.retire(v3, "post-promotion check failed")
    assert back is not None and back.version == v2
    assert reg.status(v3, reg.production_version()) == "retired"
    assert "post-promotion" in reg.retired_reason(v3)
    assert reg.last_good() is not None and reg.last_good().version == v2  # type: ignore[union-attr]


def test_stranded_is_told_apart_from_rolled_back_and_superseded(tmp_path: Path) -> None:
    reg = Registry(tmp_path / "registry")
    v1 = _promoted(reg, tmp_path, b"one")
    v2 = _promoted(reg, tmp_path, b"two")
    v3 = _register(reg, tmp_path, b"three")  # a kill came before the alias move
    live = reg.production_version()
    assert (reg.status(v1, live), reg.status(v2, live), reg.status(v3, live)) == (
        "superseded",
        "production",
        "stranded",
    )
    reg.rollback()
    assert reg.status(v2, reg.production_version()) == "retired"
    assert reg.find(reg.card(v3).sha256) == reg.card(v3)


def test_a_kill_between_retire_and_alias_move_is_finished_by_recover(tmp_path: Path) -> None:
    reg = Registry(tmp_path / "registry")
    v1 = _promoted(reg, tmp_path, b"one")
    v2 = _promoted(reg, tmp_path, b"two")
    reg.journal.append("retired", v2, reason="rolled back")  # recorded; alias never moved
    assert reg.production_version() == v2
    with reg.lock():
        done = reg.recover()
    assert reg.production_version() == v1
    assert any("finished retiring v0002" in line for line in done)


def test_leftovers_of_a_killed_writer_are_cleaned_under_the_lock(tmp_path: Path) -> None:
    reg = Registry(tmp_path / "registry")
    _promoted(reg, tmp_path, b"one")
    staging = reg.versions_dir / ".v0002.999999.0123abcd"
    staging.mkdir()
    (staging / "model.onnx").write_bytes(b"half")
    legacy = reg.versions_dir / ".v0002.k2j3h4"
    legacy.mkdir()
    alias_tmp = reg.root / ".production.json.999999.89abcdef.tmp"
    alias_tmp.write_text("{")
    with reg.lock():
        removed = reg.clean_leftovers()
    assert {p.name for p in removed} >= {staging.name, legacy.name, alias_tmp.name}
    assert not staging.exists() and not legacy.exists() and not alias_tmp.exists()
    assert reg.versions() == ["v0001"]


def test_a_torn_journal_line_is_skipped_and_the_next_append_starts_clean(tmp_path: Path) -> None:
    reg = Registry(tmp_path / "registry")
    v1 = _promoted(reg, tmp_path, b"one")
    with reg.journal.path.open("a") as fh:
        fh.write('{"event": "verified", "vers')  # a kill mid-append
    reg.journal.append("retired", v1, reason="test")
    events = reg.journal.events()
    assert events[-1]["event"] == "retired"
    assert reg.status(v1) == "retired"


def test_a_local_reference_profile_edited_after_registration_fails_verify(tmp_path: Path) -> None:
    from flywheel.release.registry.store import REFERENCE_FILE

    def profile(staging: Path, card: Any) -> None:
        (staging / REFERENCE_FILE).write_text('{"rows": 1}')

    reg = Registry(tmp_path / "registry")
    (tmp_path / "m.onnx").write_bytes(b"model")
    (tmp_path / "s.json").write_text("{}")
    version = reg.register(tmp_path / "m.onnx", tmp_path / "s.json", _fields(), profile).version
    assert reg.verify(version).files.keys() == {REFERENCE_FILE}
    (reg.version_dir(version) / REFERENCE_FILE).write_text('{"rows": 2}')
    with pytest.raises(IntegrityError, match=r"reference\.json has sha256"):
        reg.verify(version)
