"""Word dropout: the text CNN's training-batch augmentation."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flywheel.families.text.tokenizer import PAD_ID, UNK_ID

if TYPE_CHECKING:
    import torch

    from flywheel.families.base import Augment


def word_dropout(share: float) -> Augment:
    """Replace ``share`` of the real tokens of a batch of ids by ``<unk>``; padding stays."""

    import torch

    def augment(ids: torch.Tensor) -> torch.Tensor:
        drop = (torch.rand(ids.shape, device=ids.device) < share) & (ids != PAD_ID)
        return torch.where(drop, torch.full_like(ids, UNK_ID), ids)

    return augment
