from __future__ import annotations

import json
import multiprocessing as mp
from pathlib import Path

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
        p.join(60)
        assert p.exitcode == 0
    reg = Registry(root)
    assert reg.versions() == [f"v{i:04d}" for i in range(1, 16)]
    assert len({c.sha256 for c in reg.cards()}) == 15
    alias = json.loads(reg.alias_path.read_text())
    assert alias["version"] in reg.versions()
    assert len(alias["history"]) == 15
