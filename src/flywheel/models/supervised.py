"""A LightningModule that trains any family's network: cross-entropy or mean squared error."""

from __future__ import annotations

import lightning as L
import torch
from lightning.pytorch.utilities.types import OptimizerLRSchedulerConfig
from torch import nn
from torch.nn import functional as F

from flywheel.families.base import Augment, Objective


class SupervisedModule(L.LightningModule):
    def __init__(
        self,
        net: nn.Module,
        objective: Objective,
        lr: float,
        weight_decay: float,
        max_epochs: int,
        augment: Augment | None = None,
    ) -> None:
        super().__init__()
        self.net = net
        self.objective = objective
        self.lr = lr
        self.weight_decay = weight_decay
        self.max_epochs = max_epochs
        self.augment = augment

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        x, y = batch
        if stage == "train" and self.augment is not None:
            x = self.augment(x)
        out = self(x)
        on_step = stage == "train"
        if self.objective == "regression":
            loss = F.mse_loss(out.squeeze(-1), y.float())
            self.log(f"{stage}_rmse", loss.detach().sqrt(), on_step=False, on_epoch=True)
        else:
            loss = F.cross_entropy(out, y)
            acc = (out.argmax(dim=1) == y).float().mean()
            self.log(f"{stage}_acc", acc, prog_bar=True, on_step=False, on_epoch=True)
        self.log(f"{stage}_loss", loss, prog_bar=True, on_step=on_step, on_epoch=True)
        return loss

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._step(batch, "test")

    def configure_optimizers(self) -> OptimizerLRSchedulerConfig:
        params = [p for p in self.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=max(1, self.max_epochs)
        )
        return {"optimizer": optimizer, "lr_scheduler": scheduler}
