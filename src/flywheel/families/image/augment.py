"""Training-split augmentation for photos: random flips and crops, drawn per sample."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from flywheel.families.base import Augment


def random_flip_crop(pad: int) -> Augment:
    """Random horizontal flips and ``pad``-pixel random crops, drawn per sample, on a batch."""

    import torch
    from torch import nn

    def augment(x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        flip = torch.rand(n, device=x.device) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        if pad == 0:
            return x
        padded = nn.functional.pad(x, (pad, pad, pad, pad), mode="replicate")
        dy = torch.randint(0, 2 * pad + 1, (n,), device=x.device)
        dx = torch.randint(0, 2 * pad + 1, (n,), device=x.device)
        rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
        cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
        samples = torch.arange(n, device=x.device)[:, None, None, None]
        channels = torch.arange(c, device=x.device)[None, :, None, None]
        return padded[samples, channels, rows, cols]

    return augment
