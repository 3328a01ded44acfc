"""What the machine offers: the GPU, its measured ceilings, and the runtimes' providers."""

from __future__ import annotations

import importlib.util
import platform
import time
from typing import Any

NEEDED = ("torch", "lightning", "onnx", "onnxruntime", "pydantic", "yaml", "torch_pruning")


def missing_modules() -> list[str]:
    return [m for m in NEEDED if importlib.util.find_spec(m) is None]


def cuda_reason() -> str | None:
    """Why the GPU parts are skipped here, or None when a CUDA device works."""
    import torch

    if not torch.cuda.is_available():
        return "no CUDA device is available to torch on this machine"
    return None


def ort_cuda_reason() -> str | None:
    from flywheel.core.ort import CUDA, available_providers

    if CUDA in available_providers():
        return None
    import onnxruntime

    listed = CUDA in onnxruntime.get_available_providers()
    why = (
        "lists the CUDA provider but cannot attach it (no GPU, or its CUDA 13 / cuDNN 9 "
        "libraries are missing)"
        if listed
        else "is a CPU-only build (onnxruntime-gpu brings the CUDA provider)"
    )
    return f"onnxruntime {onnxruntime.__version__} {why}"


def _timed(fn: Any, repeats: int) -> float:
    import torch

    fn()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats


def measured_ceilings(n: int = 8192, repeats: int = 10) -> dict[str, float]:
    """This GPU's bf16 matrix rate and copy bandwidth, measured now (the peak a share of
    peak is computed against, rather than a datasheet figure)."""
    import torch

    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    matmul_s = _timed(lambda: a @ b, repeats)
    src = torch.empty(2**30, device="cuda", dtype=torch.uint8)
    dst = torch.empty_like(src)
    copy_s = _timed(lambda: dst.copy_(src), repeats)
    return {
        "bf16_matmul_flops": 2 * n**3 / matmul_s,
        "copy_bytes_per_s": 2 * src.numel() / copy_s,  # bytes read and written
    }


def describe() -> dict[str, Any]:
    import onnxruntime
    import torch

    info: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "ort_providers": onnxruntime.get_available_providers(),
        "missing_modules": missing_modules(),
        "cuda": cuda_reason() or "available",
    }
    if cuda_reason() is None:
        info["gpu"] = torch.cuda.get_device_name(0)
        info["bf16_supported"] = torch.cuda.is_bf16_supported()
        info["ceilings"] = measured_ceilings()
    return info
