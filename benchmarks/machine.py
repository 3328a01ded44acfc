"""The machine a benchmark ran on: CPU model and ISA flags, cores, GPU, library versions.

Speed-ups from INT8 depend on VNNI/AMX, FP16/BF16 on the GPU generation, so every result
file records them; a ratio means little without the machine it was measured on.
"""

from __future__ import annotations

import functools
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

# ISA extensions that change which kernels ONNX Runtime and PyTorch can use.
NOTABLE_FLAGS = (
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
)
LIBRARIES = (
    "torch",
    "lightning",
    "onnx",
    "onnxruntime-gpu",
    "onnxruntime",
    "torch-pruning",
    "numpy",
    "pandas",
    "great_expectations",
    "prefect",
    "dvc",
    "transformers",
    "fastapi",
    "uvicorn",
    "matplotlib",
)
# Dense peak throughput (FLOP/s) of GPUs this project may meet, by a name fragment, for the
# "share of peak" line. Tensor-core figures are without sparsity. Order matters: first match.
GPU_PEAKS: tuple[tuple[str, dict[str, float]], ...] = (
    ("H200", {"fp32": 67e12, "tf32": 494e12, "fp16": 989e12, "bf16": 989e12}),
    ("H100 PCIe", {"fp32": 51e12, "tf32": 378e12, "fp16": 756e12, "bf16": 756e12}),
    ("H100", {"fp32": 67e12, "tf32": 494e12, "fp16": 989e12, "bf16": 989e12}),
    ("A100", {"fp32": 19.5e12, "tf32": 156e12, "fp16": 312e12, "bf16": 312e12}),
    ("L4", {"fp32": 30e12, "tf32": 60e12, "fp16": 121e12, "bf16": 121e12}),
    ("A10", {"fp32": 31e12, "tf32": 62e12, "fp16": 125e12, "bf16": 125e12}),
    ("T4", {"fp32": 8.1e12, "fp16": 65e12}),
)


def parse_cpuinfo(text: str) -> dict[str, Any]:
    """Model name, logical CPUs and notable ISA flags from ``/proc/cpuinfo`` text."""
    model, logical = "", 0
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "processor":
            logical += 1
        elif key == "model name" and not model:
            model = value.strip()
        elif key in ("flags", "Features") and not flags:
            flags = set(value.split())
    return {
        "model": model or platform.processor() or "unknown",
        "logical_cpus_listed": logical,
        "flags": {f: f in flags for f in NOTABLE_FLAGS},
        "int8_dot_product": bool(flags & {"avx512_vnni", "avx_vnni", "amx_int8"}),
    }


def cpu_info() -> dict[str, Any]:
    path = Path("/proc/cpuinfo")
    info = parse_cpuinfo(path.read_text()) if path.is_file() else parse_cpuinfo("")
    info["cores_online"] = os.cpu_count()
    info["cores_usable"] = (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    )
    return info


def gpu_peak(name: str) -> dict[str, float] | None:
    for fragment, peaks in GPU_PEAKS:
        if fragment.lower() in name.lower():
            return peaks
    return None


def gpu_info() -> dict[str, Any] | None:
    """The CUDA device torch sees, or None (CPU-only torch, no driver, no device)."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    props = torch.cuda.get_device_properties(0)
    return {
        "name": props.name,
        "capability": f"{props.major}.{props.minor}",
        "memory_gib": round(props.total_memory / 2**30, 1),
        "multiprocessors": props.multi_processor_count,
        "bf16": bool(torch.cuda.is_bf16_supported()),
        "cuda": torch.version.cuda,
        "peak_flops": gpu_peak(props.name),
    }


def no_gpu_reason() -> str | None:
    """Why GPU benchmarks skip here, or None when torch and ONNX Runtime both have CUDA."""
    from flywheel.core.ort import CUDA, available_providers

    if gpu_info() is None:
        return "no CUDA device: torch.cuda.is_available() is False on this machine"
    if CUDA not in available_providers():
        return "torch sees a GPU but ONNX Runtime's CUDA provider does not load here"
    return None


def library_versions() -> dict[str, str]:
    out = {}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def _git_commit() -> str | None:
    try:
        proc = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() or None


@functools.cache
def _static_info() -> dict[str, Any]:
    from flywheel.core.ort import available_providers

    memory = None
    try:
        import psutil

        memory = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        pass
    return {
        "cpu": cpu_info(),
        "memory_gib": memory,
        "gpu": gpu_info(),
        "onnxruntime_providers": available_providers(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "libraries": library_versions(),
        "git_commit": _git_commit(),
    }


def machine_info() -> dict[str, Any]:
    """Everything above, plus the load average now: on a shared machine it explains noise."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {**_static_info(), "load_average_1_5_15": [round(x, 2) for x in load] if load else None}
