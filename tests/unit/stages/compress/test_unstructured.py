"""Unstructured sparsity: zeroed weights, unchanged shapes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from flywheel.stages.compress.unstructured import sparsify


def test_sparsify_zeroes_the_smallest_weights_and_keeps_shapes() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
    sparse, stats = sparsify(net, 0.5)
    assert stats["zero_share"] == pytest.approx(0.5, abs=0.01)
    assert stats["layers"] == 2
    shapes = {k: v.shape for k, v in net.state_dict().items()}
    assert {k: v.shape for k, v in sparse.state_dict().items()} == shapes
    assert not any((p == 0).any() for p in net.parameters())  # the original is untouched
    with pytest.raises(ValueError, match="sparsity"):
        sparsify(net, 1.0)
