"""The model holder after a crash: a refused version is tried again after a back-off, and
a server with nothing loaded whose production is unusable serves the last good version."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from flywheel.release.registry import Registry
from flywheel.serving.model_holder import ModelHolder
from flywheel.serving.telemetry import ServingMetrics

LABELS = tuple(str(i) for i in range(10))


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    import torch

    from flywheel.families.image.network import ConvNet
    from flywheel.families.image.pixels import PreprocessingSpec
    from flywheel.nn.onnx_export import export_onnx

    out = tmp_path_factory.mktemp("onnx")
    paths = {}
    for name, seed in (("a", 1), ("b", 2)):
        torch.manual_seed(seed)
        paths[name] = export_onnx(
            ConvNet(1, 8, 10, channels=(4, 8)), (1, 8, 8), out / f"{name}.onnx"
        )
    spec = PreprocessingSpec(size=8, mode="L", mean=(0.3,), std=(0.25,), labels=LABELS)
    spec.save(out / "preprocessing.json")
    paths["spec"] = out / "preprocessing.json"
    return paths


def _fields() -> dict:
    return {
        "task": "image_classification",
        "labels": LABELS,
        "data_hash": "d",
        "params_hash": "p",
        "code_version": "test",
        "variant": "fp32",
        "recipe": {},
        "metrics": {"accuracy": 0.5},
        "params": {},
        "evaluation": {},
    }


def _registry(tmp_path: Path, models: dict[str, Path]) -> Registry:
    registry = Registry(tmp_path / "registry")
    for name in ("a", "b"):
        version = registry.register(models[name], models["spec"], _fields()).version
        registry.promote(version)
        registry.mark_verified(version)
    return registry


def test_a_corrupt_alias_at_start_serves_the_last_good_version(
    tmp_path: Path, models: dict[str, Path]
) -> None:
    registry = _registry(tmp_path, models)
    registry.alias_path.write_text('{"vers')
    holder = ModelHolder(registry, ServingMetrics())
    assert holder.check()
    assert holder.current is not None and holder.current.version == "v0002"
    assert holder.last_refusal is not None
    assert "alias is corrupt; serving the last good version v0002" in holder.last_refusal


def test_a_refused_production_is_retried_and_the_last_good_serves_meanwhile(
    tmp_path: Path, models: dict[str, Path]
) -> None:
    registry = _registry(tmp_path, models)
    model = registry.model_path("v0002")
    good = model.read_bytes()
    model.write_bytes(good[:100])  # a half-written or damaged file: refused (integrity)
    holder = ModelHolder(registry, ServingMetrics(), retry_max_s=0.4)
    holder._interval = 0.2  # what poll_forever sets from serve.poll_interval_s
    assert holder.check()
    assert holder.current is not None and holder.current.version == "v0001"
    assert "production v0002 was refused" in str(holder.last_refusal)
    assert not holder.check()  # before the back-off: not tried again
    model.write_bytes(good)  # the cause went away (the file restored, memory freed)
    time.sleep(0.5)
    assert holder.check()
    assert holder.current.version == "v0002"
    assert holder.last_refusal is None
