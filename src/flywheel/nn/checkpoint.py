"""A trained network back from its checkpoint, and its outputs and metrics on arrays."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from flywheel.core.config import Params
from flywheel.families import get_family
from flywheel.measure.metrics import compute_metrics


@torch.inference_mode()
def predict_outputs(net: nn.Module, x: np.ndarray, batch_size: int = 512) -> np.ndarray:
    net.eval()
    return np.concatenate(
        [
            net(torch.from_numpy(x[i : i + batch_size])).float().numpy()
            for i in range(0, len(x), batch_size)
        ]
    )


def evaluate_network(
    net: nn.Module, params: Params, x: np.ndarray, y: np.ndarray
) -> dict[str, float]:
    return compute_metrics(predict_outputs(net, x), y, params.is_regression)


def accuracy(net: nn.Module, x: np.ndarray, y: np.ndarray, batch_size: int = 512) -> float:
    """Classification accuracy of ``net``; kept for the classifier-only call sites."""
    return compute_metrics(predict_outputs(net, x, batch_size), y, regression=False)["accuracy"]


def load_network(checkpoint: Path, params: Params, spec: Any) -> nn.Module:
    """The trained network from a Lightning checkpoint written by :func:`run_train`."""
    net = get_family(params.task).build_network(params, spec)
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    net.load_state_dict({k.removeprefix("net."): v for k, v in state.items()})
    return net.eval()
