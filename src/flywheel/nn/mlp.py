"""The multi-layer perceptron used as a head by every family and as the tabular model."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn


def mlp(
    in_features: int, hidden: Sequence[int], out_features: int, dropout: float
) -> nn.Sequential:
    """Linear-ReLU-Dropout blocks then a linear output; ``hidden=()`` is a linear model."""
    layers: list[nn.Module] = []
    width = in_features
    for h in hidden:
        # Not in-place: torch-pruning cannot trace through in-place activations.
        layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(dropout)]
        width = h
    layers.append(nn.Linear(width, out_features))
    return nn.Sequential(*layers)
