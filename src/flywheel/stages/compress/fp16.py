"""FP16 weights and activations, for GPUs only.

On a GPU, FP16 halves memory traffic and runs on tensor cores. On a CPU, ONNX Runtime has few
FP16 kernels and would wrap fp32 kernels in casts, so the variant is built only when the CUDA
execution provider really works here, and skipped with that reason otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import onnx

from flywheel.core.ort import CUDA, available_providers


def fp16_unavailable_reason() -> str | None:
    """Why FP16 is skipped on this machine, or None when the CUDA provider works."""
    providers = available_providers()
    if providers and providers[0] == CUDA:
        return None
    return f"FP16 runs on GPU only; ONNX Runtime has no usable CUDA provider here ({providers})"


def convert_fp16(fp32_path: Path, out_path: Path) -> dict[str, Any]:
    """Float tensors of ``fp32_path`` as float16, inputs and outputs left as they are."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load(str(fp32_path)), keep_io_types=True)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out_path))
    return {"conversion": "onnxruntime.transformers.float16", "keep_io_types": True}
