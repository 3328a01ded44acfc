"""GPU paths: Lightning mixed precision and ONNX Runtime CUDA. Skipped without CUDA."""

from __future__ import annotations

import numpy as np
import pytest

from flywheel.core.sections import TrainConfig
from flywheel.nn.fit import resolve_precision

pytestmark = [pytest.mark.gpu, pytest.mark.slow]


def test_auto_precision_uses_mixed_precision_on_gpu() -> None:
    accelerator, precision = resolve_precision(TrainConfig())
    assert accelerator == "gpu"
    assert precision in ("bf16-mixed", "16-mixed")


def test_lightning_trains_on_gpu(workspace, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from flywheel.core.config import parse_params
    from flywheel.families.image.network import ConvNet
    from flywheel.nn.checkpoint import accuracy
    from flywheel.nn.fit import fit_network

    raw = workspace.params.as_dict()
    raw["train"].update(accelerator="gpu", precision="auto", max_epochs=3)
    params = parse_params(raw)
    net = ConvNet(1, 8, 10)
    trained, fit, _ = fit_network(
        net,
        params,
        workspace.split("train"),
        workspace.split("val"),
        max_epochs=3,
        checkpoint_dir=tmp_path,
    )
    assert fit.accelerator == "gpu" and "mixed" in fit.precision
    assert accuracy(trained, *workspace.split("test")) > 0.5


def test_onnx_runtime_cuda_matches_cpu(workspace, exported) -> None:  # type: ignore[no-untyped-def]
    from flywheel.core.ort import CPU, available_providers, make_session

    providers = available_providers()
    if "CUDAExecutionProvider" not in providers:
        pytest.skip("onnxruntime's CUDA provider cannot load its CUDA libraries here")
    path = workspace.layout.variant_file("fp32")
    x, _ = workspace.split("test")
    gpu = make_session(path, providers=providers).run(None, {"input": x})[0]
    cpu = make_session(path, providers=[CPU]).run(None, {"input": x})[0]
    assert np.abs(gpu - cpu).max() < 1e-3


def test_cpu_resolution_without_gpu_is_fp32() -> None:
    """Also documents the CPU rule (this test itself only runs where a GPU exists)."""
    assert resolve_precision(TrainConfig(accelerator="cpu")) == ("cpu", "32-true")
