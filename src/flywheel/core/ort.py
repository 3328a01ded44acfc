"""ONNX Runtime sessions, shared by evaluation and serving.

Only ``onnxruntime`` and the standard library are imported here (``onnx`` lazily, for the
GPU probe), so the server can use this module without pulling in torch.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

import onnxruntime as ort

# Every family's ONNX graph takes one input and gives one output, named so.
INPUT_NAME = "input"
OUTPUT_NAME = "logits"
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"

# 3 = errors only: ORT's warnings about unused initialisers or CPU fallbacks are noise here.
_QUIET = 3


def _gpu_device_present() -> bool:
    """A cheap check before the probe, so CPU-only machines never try to load CUDA libraries."""
    if sys.platform.startswith("linux"):
        return Path("/dev/nvidiactl").exists() or Path("/proc/driver/nvidia/version").exists()
    return sys.platform == "win32"


def _cuda_probe() -> bool:
    """Whether a session really gets the CUDA provider attached.

    onnxruntime-gpu lists CUDA on every machine, and even with a GPU present the provider
    silently falls back to CPU when the CUDA/cuDNN libraries it was built against are
    missing; building a one-node session is the only check that sees both.
    """
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "probe",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    options = ort.SessionOptions()
    options.log_severity_level = _QUIET
    try:
        session = ort.InferenceSession(model.SerializeToString(), options, providers=[CUDA, CPU])
    except Exception:  # any failure means "no usable GPU", not a crash
        return False
    return session.get_providers()[0] == CUDA


@functools.lru_cache(maxsize=1)
def available_providers() -> list[str]:
    """Execution providers that can really run here, best first; CPU is always last.

    ``FLYWHEEL_ORT_CPU_ONLY=1`` skips the GPU even when one works (benchmarks, CI parity).
    """
    if os.environ.get("FLYWHEEL_ORT_CPU_ONLY", "") not in ("", "0"):
        return [CPU]
    if CUDA in ort.get_available_providers() and _gpu_device_present() and _cuda_probe():
        return [CUDA, CPU]
    return [CPU]


def make_session(
    path_or_bytes: str | Path | bytes,
    *,
    intra_op_threads: int = 0,
    graph_optimization: ort.GraphOptimizationLevel = ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    providers: list[str] | None = None,
) -> ort.InferenceSession:
    """An ``InferenceSession`` with quiet logging; ``intra_op_threads=0`` lets ORT choose."""
    options = ort.SessionOptions()
    options.log_severity_level = _QUIET
    options.graph_optimization_level = graph_optimization
    if intra_op_threads > 0:
        options.intra_op_num_threads = intra_op_threads
        # Keeps a pinned thread budget honest: no second pool for parallel branches.
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    model = str(path_or_bytes) if isinstance(path_or_bytes, Path) else path_or_bytes
    return ort.InferenceSession(model, options, providers=providers or available_providers())
