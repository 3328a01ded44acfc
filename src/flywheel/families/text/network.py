"""The text classifier: token embeddings, 1D convolutions, a global max-pool, an MLP head.

Predictions never depend on how much padding follows the text. The ``<pad>`` embedding is
the zero vector (``padding_idx=0``, never trained) and every convolution pads with zeros,
so a window at a real position sees the same values whether it overlaps ``<pad>`` tokens or
the sequence edge; after each ReLU the outputs at ``<pad>`` positions are zeroed, and
because ReLU outputs are never negative the max-pool over positions is then unaffected by
them. (Without the mask, windows lying wholly in the padding would still give ReLU(bias).)

Only plain layers (Embedding, Conv1d, Linear) hold weights, so torch-pruning can remove
embedding dimensions and convolution channels, and ONNX Runtime's static QDQ quantization
turns the table, the convolutions and the head into INT8 (Gather, Conv, Gemm).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from flywheel.families.text.tokenizer import PAD_ID
from flywheel.nn.mlp import mlp


class TextCNN(nn.Module):
    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        embedding_dim: int = 64,
        channels: Sequence[int] = (128,),
        kernel_size: int = 5,
        hidden: Sequence[int] = (),
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        if not channels:
            raise ValueError("TextCNN needs at least one convolution (model.channels)")
        if kernel_size % 2 == 0:
            # An odd kernel centred on its token keeps a position's output inside the text.
            raise ValueError(f"model.kernel_size must be odd for a text CNN, got {kernel_size}")
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=PAD_ID)
        self.convs = nn.ModuleList()
        width = embedding_dim
        for c_out in channels:
            self.convs.append(nn.Conv1d(width, c_out, kernel_size, padding=kernel_size // 2))
            width = c_out
        self.dropout = nn.Dropout(dropout)
        self.head = mlp(width, hidden, num_classes, dropout)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        # (N, L) -> (N, 1, L): 1.0 on tokens, 0.0 on padding.
        keep = (ids != PAD_ID).unsqueeze(1).to(self.embedding.weight.dtype)
        x = self.dropout(self.embedding(ids)).transpose(1, 2)
        for conv in self.convs:
            x = torch.relu(conv(x)) * keep
        return self.head(self.dropout(x.amax(dim=2)))
