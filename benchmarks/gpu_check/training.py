"""Training throughput on the GPU: Lightning bf16-mixed vs fp32, and torch.compile on vs off,
for the MNIST-sized CNN and a MiniLM-shaped encoder (random weights and data of the real
shapes: throughput does not depend on what the weights are)."""

from __future__ import annotations

import time
from typing import Any


def cnn() -> Any:
    from flywheel.families.image.network import ConvNet

    return ConvNet(in_channels=1, size=28, num_classes=10, channels=(16, 32, 64))


def minilm_shaped() -> Any:
    """A BERT encoder with MiniLM-L6's shape (6 layers, 384 wide, 12 heads) and a linear
    head on the mean-pooled tokens; random weights (the packaged weights are not needed to
    time it)."""
    import torch
    from torch import nn
    from transformers import BertConfig, BertModel

    config = BertConfig(
        hidden_size=384,
        num_hidden_layers=6,
        num_attention_heads=12,
        intermediate_size=1536,
        vocab_size=30522,
        max_position_embeddings=512,
        attn_implementation="sdpa",
    )

    class Classifier(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = BertModel(config, add_pooling_layer=False)
            self.head = nn.Linear(384, 2)

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            hidden = self.encoder(input_ids=ids).last_hidden_state
            return self.head(hidden.mean(dim=1))

    return Classifier()


def _data(kind: str, n: int) -> tuple[Any, Any]:
    import torch

    g = torch.Generator().manual_seed(0)
    if kind == "cnn":
        return torch.randn(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g)
    return torch.randint(1000, 30000, (n, 64), generator=g), torch.randint(0, 2, (n,), generator=g)


def lightning_rate(kind: str, precision: str, compile_net: bool, n: int, epochs: int) -> float:
    """Samples/s of the epochs after the first (which pays for CUDA start-up and compiling)."""
    import lightning as L
    import torch
    from lightning.pytorch.callbacks import Callback
    from torch.utils.data import DataLoader, TensorDataset

    from flywheel.nn.module import SupervisedModule

    net = cnn() if kind == "cnn" else minilm_shaped()
    if compile_net:
        net = torch.compile(net)
    module = SupervisedModule(net, "classification", lr=1e-3, weight_decay=0.0, max_epochs=epochs)
    x, y = _data(kind, n)
    loader = DataLoader(
        TensorDataset(x, y), batch_size=256 if kind == "cnn" else 64, shuffle=True, pin_memory=True
    )

    class EpochTimes(Callback):
        def __init__(self) -> None:
            self.starts: list[float] = []

        def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
            torch.cuda.synchronize()
            self.starts.append(time.perf_counter())

        def on_train_end(self, trainer: Any, pl_module: Any) -> None:
            torch.cuda.synchronize()
            self.starts.append(time.perf_counter())

    times = EpochTimes()
    trainer = L.Trainer(
        accelerator="gpu",
        devices=1,
        precision=precision,
        max_epochs=epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[times],
        num_sanity_val_steps=0,
    )
    trainer.fit(module, loader)
    timed = times.starts[-1] - times.starts[1]
    return round(n * (epochs - 1) / timed, 1)


def run_training(quick: bool) -> dict[str, Any]:
    n_cnn, n_bert, epochs = (4096, 512, 2) if quick else (32768, 4096, 3)
    out: dict[str, Any] = {}
    for kind, n in (("cnn", n_cnn), ("minilm", n_bert)):
        fp32 = lightning_rate(kind, "32-true", False, n, epochs)
        bf16 = lightning_rate(kind, "bf16-mixed", False, n, epochs)
        compiled = lightning_rate(kind, "bf16-mixed", True, n, epochs)
        out[kind] = {
            "fp32_samples_per_s": fp32,
            "bf16_mixed_samples_per_s": bf16,
            "bf16_mixed_compiled_samples_per_s": compiled,
            "bf16_vs_fp32": round(bf16 / fp32, 3),
            "compile_on_vs_off": round(compiled / bf16, 3),
        }
    return out
