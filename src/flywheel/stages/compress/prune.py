"""Structured channel pruning: whole channels leave the network, so it really gets smaller.

``ratio`` is the fraction of output channels removed from every prunable layer (torch-pruning's
``pruning_ratio``): at 0.5 a 32->64 ConvNet becomes 16->32, and because a convolution's cost is
in_channels x out_channels, MACs fall by roughly 3-4x, not 2x. The classifier's output layer is
never pruned: its outputs are the labels.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch_pruning as tp
from torch import nn


@dataclass(frozen=True)
class PruneStats:
    ratio: float
    macs_before: int
    macs_after: int
    params_before: int
    params_after: int

    @property
    def macs_ratio(self) -> float:
        """How many times fewer MACs the pruned network needs (>= 1)."""
        return self.macs_before / max(self.macs_after, 1)

    @property
    def params_ratio(self) -> float:
        return self.params_before / max(self.params_after, 1)


def _count(net: nn.Module, example_input: torch.Tensor) -> tuple[int, int]:
    macs, n_params = tp.utils.count_ops_and_params(net, example_input)
    return int(macs), int(n_params)


def _output_layer(net: nn.Module) -> nn.Module:
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError("cannot prune: the network has no Linear output layer")
    return linears[-1]


def prune_network(
    net: nn.Module, example_input: torch.Tensor, ratio: float
) -> tuple[nn.Module, PruneStats]:
    """A pruned copy of ``net`` (the argument is left untouched) and its before/after costs."""
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"prune ratio must lie in [0, 1), got {ratio}")
    pruned = copy.deepcopy(net).cpu().eval()
    example_input = example_input.cpu()
    macs_before, params_before = _count(pruned, example_input)
    if ratio > 0.0:
        pruner = tp.pruner.BasePruner(  # MetaPruner/MagnitudePruner are deprecated aliases
            pruned,
            example_input,
            importance=tp.importance.GroupMagnitudeImportance(p=2),
            pruning_ratio=ratio,
            ignored_layers=[_output_layer(pruned)],
        )
        pruner.step()
    macs_after, params_after = _count(pruned, example_input)
    stats = PruneStats(ratio, macs_before, macs_after, params_before, params_after)
    return pruned, stats


def conv_channels(net: nn.Module) -> list[int]:
    """Output channels of each convolution, in order: what pruning changes."""
    return [m.out_channels for m in net.modules() if isinstance(m, nn.Conv1d | nn.Conv2d)]
