"""Inference on the GPU: eager PyTorch vs ONNX Runtime's CUDA provider for the pipeline's
variants (and FP16), and the achieved share of the GPU's measured bf16 peak for the largest
model (the MiniLM-shaped encoder)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np


def _per_call_ms(fn: Any, repeats: int) -> float:
    import torch

    for _ in range(5):
        fn()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats * 1000


def variants_on_gpu(layout: Any, params: Any, ort_cuda: bool, repeats: int) -> dict[str, Any]:
    """Batch-1 and batch-64 milliseconds: eager PyTorch on CUDA vs ORT CUDA per variant."""
    import torch

    from flywheel.core.ort import CPU, CUDA
    from flywheel.datasets.arrays import load_split
    from flywheel.families import get_family
    from flywheel.measure.runners import onnx_runner
    from flywheel.nn.checkpoint import load_network

    spec = get_family(params.task).load_spec(layout.preprocessing_spec)
    net = load_network(layout.checkpoint, params, spec).cuda().eval()
    x, _ = load_split(layout.split_file("test"))
    one, big = np.ascontiguousarray(x[:1]), np.ascontiguousarray(x[:64])

    def eager(batch: np.ndarray) -> Any:
        with torch.inference_mode():
            return net(torch.from_numpy(batch).cuda()).float().cpu()

    out: dict[str, Any] = {
        "torch-eager-cuda": {
            "p_ms_batch1": _per_call_ms(lambda: eager(one), repeats),
            "p_ms_batch64": _per_call_ms(lambda: eager(big), repeats),
        }
    }
    if not ort_cuda:
        return out
    variants = [*sorted(Path(layout.compressed_dir).glob("*.onnx")), layout.variant_file("fp32")]
    for path in variants:
        run, provider = onnx_runner(path, 0, [CUDA, CPU])
        out[f"ort-cuda:{path.stem}"] = {
            "provider": provider,
            "p_ms_batch1": _per_call_ms(lambda r=run: r(one), repeats),
            "p_ms_batch64": _per_call_ms(lambda r=run: r(big), repeats),
        }
    return out


def share_of_peak(peak_flops: float, batch: int = 256, repeats: int = 20) -> dict[str, Any]:
    """FLOPs of one bf16 forward of the MiniLM-shaped encoder (counted by torch) over its
    measured time, against the GPU's measured bf16 matrix rate."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from benchmarks.gpu_check.training import minilm_shaped

    net = minilm_shaped().cuda().eval().to(torch.bfloat16)
    ids = torch.randint(1000, 30000, (batch, 64), device="cuda")
    with torch.inference_mode():
        counter = FlopCounterMode(display=False)
        with counter:
            net(ids)
        flops = counter.get_total_flops()
        ms = _per_call_ms(lambda: net(ids), repeats)
    achieved = flops / (ms / 1000)
    return {
        "model": "MiniLM-shaped encoder, bf16, batch 256 x 64 tokens",
        "flops_per_forward": flops,
        "ms_per_forward": round(ms, 3),
        "achieved_flops": achieved,
        "measured_peak_flops": peak_flops,
        "share_of_peak": round(achieved / peak_flops, 4),
    }
