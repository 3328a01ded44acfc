"""Build the configured network for a preprocessed dataset."""

from __future__ import annotations

from torch import nn

from flywheel.config import Params
from flywheel.data.images import PreprocessingSpec
from flywheel.models.cnn import ConvNet


def build_network(params: Params, spec: PreprocessingSpec) -> nn.Module:
    return ConvNet(
        in_channels=spec.channels,
        size=spec.size,
        num_classes=len(spec.labels),
        channels=params.model.channels,
        hidden=params.model.hidden,
        dropout=params.model.dropout,
    )
