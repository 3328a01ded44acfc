"""The inference benchmark on CUDA: eager PyTorch vs ONNX Runtime's CUDA provider, and the
achieved share of the GPU's peak FLOP/s."""

from __future__ import annotations

from typing import Any

import numpy as np

from benchmarks.common import (
    ratio,
)
from benchmarks.inference_timing import Plan, count_macs, time_all
from benchmarks.machine import gpu_info


def measure_gpu(ws: Any, plan: Plan) -> dict[str, Any]:
    """Eager PyTorch on CUDA vs ONNX Runtime's CUDA provider (fp32; fp16 and the fused
    transformer graphs when built), batch 1 and batch ``plan.batch``, and the achieved share
    of the GPU's peak FLOP/s."""
    import torch

    from flywheel.core.ort import CPU, CUDA
    from flywheel.datasets.arrays import load_split
    from flywheel.families import get_family
    from flywheel.measure.runners import onnx_runner
    from flywheel.nn.checkpoint import load_network

    params, layout = ws.params, ws.layout
    family = get_family(params.task)
    spec = family.load_spec(layout.preprocessing_spec)
    x, _ = load_split(layout.split_file("test"))
    net = load_network(layout.checkpoint, params, spec).cuda().eval()

    def eager(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return net(torch.from_numpy(batch).cuda()).float().cpu().numpy()

    runners: dict[str, Any] = {"torch-eager-cuda-fp32": eager}
    runners["ort-cuda-fp32"] = onnx_runner(layout.variant_file("fp32"), 0, [CUDA, CPU])[0]
    # Built only where CUDA works: fp16 for every family, the fused graphs for transformers.
    for variant in ("fp16", "fused-fp32", "fused-fp16"):
        if layout.variant_file(variant).is_file():
            path = layout.variant_file(variant)
            runners[f"ort-cuda-{variant}"] = onnx_runner(path, 0, [CUDA, CPU])[0]
    timing = time_all(runners, x, plan)
    macs = count_macs(load_network(layout.checkpoint, params, spec), family.example_input(spec))
    info = gpu_info() or {}
    peaks = info.get("peak_flops") or {}
    for name, t in timing.items():
        precision = "fp16" if name.endswith("fp16") else "fp32"
        achieved = 2.0 * macs * t["throughput_per_s"] if macs else None
        peak = peaks.get(precision)
        t["achieved_flops"] = achieved
        t["share_of_peak"] = ratio(achieved, peak, 6) if achieved and peak else None
        t["peak_note"] = (
            f"vs {precision} dense peak {peak:.3g} FLOP/s at batch {plan.batch}"
            if peak
            else f"peak of {info.get('name')} unknown: add it to benchmarks/machine.py"
        )
    return {
        "gpu": info,
        "macs_per_sample": macs,
        "models": timing,
        "ort_cuda_fp32_p50_vs_eager": ratio(
            timing["ort-cuda-fp32"]["latency_p50_ms"],
            timing["torch-eager-cuda-fp32"]["latency_p50_ms"],
        ),
    }
