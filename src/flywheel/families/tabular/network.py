"""The tabular regressor: an MLP on the encoded features (linear when ``hidden`` is empty).

It learns the standardised target, which keeps the optimiser's scale independent of the
target's units, and maps its output back to those units itself, so the exported ONNX model
outputs the prediction every metric, the gate and the server use.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from flywheel.nn.mlp import mlp


class TabularRegressor(nn.Module):
    target_mean: torch.Tensor
    target_std: torch.Tensor

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int],
        dropout: float,
        target_mean: float,
        target_std: float,
    ) -> None:
        super().__init__()
        self.body = mlp(in_features, hidden, 1, dropout)
        for layer in self.body.modules():
            if isinstance(layer, nn.ReLU):
                # torch-pruning's tracer loses the Linear->Linear dependency through an
                # in-place ReLU and then prunes nothing; out of place costs next to nothing.
                layer.inplace = False
        # Buffers, not parameters: saved with the checkpoint, never trained or pruned.
        self.register_buffer("target_mean", torch.tensor([target_mean], dtype=torch.float32))
        self.register_buffer("target_std", torch.tensor([target_std], dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # float(): under bf16 autocast, target units (1e5) would keep only 3 digits.
        return self.body(x).float() * self.target_std + self.target_mean
