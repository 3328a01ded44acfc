"""The image family's training augmentation: flips and crops drawn per sample."""

from __future__ import annotations

import torch
from torch import nn

from flywheel.families.image.family import random_flip_crop


def _candidates(image: torch.Tensor, pad: int) -> list[torch.Tensor]:
    """Every flip x crop of one (C, H, W) image the augmentation may return."""
    _, h, w = image.shape
    out = []
    for flipped in (image, image.flip(-1)):
        padded = nn.functional.pad(flipped[None], (pad,) * 4, mode="replicate")[0]
        for dy in range(2 * pad + 1):
            for dx in range(2 * pad + 1):
                out.append(padded[:, dy : dy + h, dx : dx + w])
    return out


def test_each_sample_gets_its_own_flip_and_crop() -> None:
    torch.manual_seed(0)
    image = torch.rand(3, 10, 10)
    batch = image.expand(64, -1, -1, -1).clone()
    out = random_flip_crop(2)(batch)
    assert out.shape == batch.shape
    allowed = _candidates(image, 2)
    for sample in out:
        assert any(torch.equal(sample, c) for c in allowed)
    distinct = {tuple(s.flatten().tolist()) for s in out}
    assert len(distinct) > 10  # one shared crop per batch would give at most 2 (flip or not)


def test_no_padding_means_flips_only() -> None:
    image = torch.rand(1, 5, 7)
    out = random_flip_crop(0)(image.expand(16, -1, -1, -1).clone())
    assert all(torch.equal(s, image) or torch.equal(s, image.flip(-1)) for s in out)
