"""Eager PyTorch as a runner of the timing harness: the baseline every variant is compared to."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from flywheel.core.sections import EvaluateConfig
from flywheel.measure.runners import timing_plan
from flywheel.measure.timing import Runner, Timing, benchmark


def torch_runner(net: nn.Module) -> Runner:
    net = net.cpu().eval()

    def run(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return net(torch.from_numpy(batch)).numpy()

    return run


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Pins torch to ``threads`` intra-op threads for the block (0 leaves torch's default).

    ORT sessions get ``intra_op_threads`` too, so eager PyTorch and ONNX Runtime are timed
    with the same thread budget; the previous setting is restored afterwards.
    """
    saved = torch.get_num_threads()
    if threads > 0:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


def measure_torch_eager(net: nn.Module, x: np.ndarray, cfg: EvaluateConfig) -> Timing:
    """Eager PyTorch fp32 on CPU, with torch's threads set to ``cfg.intra_op_threads`` when > 0."""
    with torch_threads(cfg.intra_op_threads):
        return benchmark({"torch": torch_runner(net)}, x, timing_plan(cfg, rounds=1))["torch"]


def state_dict_bytes(net: nn.Module) -> int:
    """Size of the network's weights as PyTorch saves them: eager fp32's "file size"."""
    buffer = io.BytesIO()
    torch.save(net.state_dict(), buffer)
    return buffer.getbuffer().nbytes
