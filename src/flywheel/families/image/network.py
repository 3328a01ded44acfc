"""The image classifier network of the brief: a small VGG-style CNN."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from flywheel.nn.mlp import mlp


class ConvNet(nn.Module):
    """Conv-BN-ReLU blocks, each halving the resolution while it is above 2 pixels,
    then a flatten and a two-layer head. Plain layers only, so structured pruning can
    remove channels and ONNX export needs no custom ops."""

    def __init__(
        self,
        in_channels: int,
        size: int,
        num_classes: int,
        channels: Sequence[int] = (32, 64),
        hidden: Sequence[int] = (128,),
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in, side = in_channels, size
        for c_out in channels:
            layers += [
                nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
            ]
            if side > 2:
                layers.append(nn.MaxPool2d(2))
                side //= 2
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Flatten(), mlp(c_in * side * side, hidden, num_classes, dropout)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
