from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx
import pytest
import torch

from flywheel.core.config import parse_params
from flywheel.core.ort import CPU, make_session
from flywheel.measure.runners import measure_variant
from flywheel.measure.selection import choose_winner
from flywheel.nn.eager import measure_torch_eager
from flywheel.stages.compress.prune import conv_channels, prune_network
from flywheel.stages.compress.quantize import calibration_sample, quantize_static_qdq
from flywheel.stages.evaluate.run import run as run_evaluate

if TYPE_CHECKING:
    from conftest import Workspace

pytestmark = pytest.mark.slow


def _onnx_accuracy(path: Path, x: np.ndarray, y: np.ndarray) -> float:
    logits = make_session(path, providers=[CPU]).run(None, {"input": x})[0]
    return float((logits.argmax(axis=1) == y).mean())


def _op_types(path: Path) -> set[str]:
    return {node.op_type for node in onnx.load(str(path)).graph.node}


def test_pruning_removes_channels(workspace: Workspace) -> None:
    net = workspace.network()
    example = torch.zeros((1, *workspace.spec.input_shape))
    pruned, stats = prune_network(net, example, ratio=0.5)
    # ratio = fraction of channels removed per layer: 0.5 halves every convolution.
    assert conv_channels(net) == [32, 64]
    assert conv_channels(pruned) == [16, 32]
    assert stats.macs_before / stats.macs_after >= 2.0
    assert stats.params_after < stats.params_before
    assert pruned(example).shape == (1, len(workspace.spec.labels))  # labels untouched


def test_static_int8_within_max_drop(
    workspace: Workspace, compressed: dict[str, dict[str, Any]]
) -> None:
    x, y = workspace.split("test")
    fp32 = _onnx_accuracy(workspace.layout.variant_file("fp32"), x, y)
    int8 = _onnx_accuracy(workspace.layout.variant_file("int8"), x, y)
    assert int8 >= fp32 - workspace.params.gate.max_drop
    assert {"QuantizeLinear", "DequantizeLinear"} <= _op_types(
        workspace.layout.variant_file("int8")
    )
    sizes = {v: workspace.layout.variant_file(v).stat().st_size for v in compressed}
    assert sizes["int8"] < sizes["fp32"] / 2
    assert sizes["pruned-int8"] < sizes["int8"]


def test_cnn_family_refuses_dynamic_quantization(
    workspace: Workspace, compressed: dict[str, dict[str, Any]]
) -> None:
    """ConvInteger (dynamic INT8 of convolutions) is slower than fp32 on CPUs without VNNI,
    so the image family does not offer it; asking for it is a clear config error."""
    from flywheel.core.errors import ConfigError
    from flywheel.stages.compress.run import run as run_compress

    raw = workspace.params.as_dict()
    raw["compress"]["variants"] = ["fp32", "dynamic-int8"]
    params = parse_params(raw)
    with pytest.raises(ConfigError, match=r"dynamic-int8.*image_classification"):
        run_compress(params, workspace.layout)


def test_recipes_describe_each_variant(
    workspace: Workspace, compressed: dict[str, dict[str, Any]]
) -> None:
    assert set(compressed) == set(workspace.params.compress.variants)
    for variant, recipe in compressed.items():
        assert workspace.layout.recipe_file(variant).is_file()
        assert recipe["variant"] == variant
    assert compressed["fp32"]["steps"] == ["export"]
    pruned = compressed["pruned-int8"]
    assert pruned["steps"] == ["prune", "finetune", "export", "quantize-static-qdq"]
    assert pruned["prune"]["macs_after"] < pruned["prune"]["macs_before"]
    assert pruned["quantization"]["calibration_samples"] == 128
    assert pruned["quantization"]["per_channel"] is True
    assert 0.0 < pruned["val_accuracy_pruned"] <= 1.0


def test_static_quantization_is_deterministic(
    workspace: Workspace, exported: object, tmp_path: Path
) -> None:
    x, _ = workspace.split("train")
    calibration = calibration_sample(x, 64, seed=3)
    np.testing.assert_array_equal(calibration, calibration_sample(x, 64, seed=3))
    fp32 = workspace.layout.variant_file("fp32")
    a = quantize_static_qdq(fp32, tmp_path / "a.onnx", calibration, per_channel=True)
    b = quantize_static_qdq(fp32, tmp_path / "b.onnx", calibration, per_channel=True)
    assert a == b
    assert (tmp_path / "a.onnx").read_bytes() == (tmp_path / "b.onnx").read_bytes()


def test_evaluate_report(workspace: Workspace, compressed: dict[str, dict[str, Any]]) -> None:
    report = run_evaluate(workspace.params, workspace.layout)
    variants = report["variants"]
    assert isinstance(variants, dict)
    assert set(variants) == set(workspace.params.compress.variants)
    assert report["winner"] in variants
    assert workspace.layout.evaluation_report.is_file()
    x, y = workspace.split("test")
    one = measure_variant(
        workspace.layout.variant_file("int8"), x, y, workspace.params.evaluate, [CPU]
    )
    assert one.score == pytest.approx(variants["int8"]["score"], abs=1e-6)
    assert one.metrics["accuracy"] == pytest.approx(
        variants["int8"]["metrics"]["accuracy"], abs=1e-6
    )
    assert one.latency_p50_ms > 0 and one.throughput_per_s > 0
    assert choose_winner({"fp32": one}, 0.0) == "fp32"
    threads = torch.get_num_threads()
    eager = measure_torch_eager(workspace.network(), x, workspace.params.evaluate)
    assert eager.latency_p50_ms > 0
    assert torch.get_num_threads() == threads  # the thread pin does not leak out
