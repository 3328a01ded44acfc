"""A LightningModule that trains any family's network: cross-entropy or mean squared error.

Metrics are accumulated on the device during an epoch and logged once at its end, not
per step: each ``self.log`` call re-walks Lightning's metric object in Python, which on a
small network costs a large share of the step itself; a per-step progress-bar value also
forces a device sync on a GPU. The logged names are the epoch means:
``train_loss``, ``train_acc`` / ``train_rmse``, ``val_loss``, ``val_acc`` / ``val_rmse``
(and ``test_*``), weighted by batch size as ``on_epoch`` logging weights them; an RMSE is
the square root of the epoch's mean squared error.
"""

from __future__ import annotations

import lightning as L
import torch
from lightning.pytorch.utilities.types import OptimizerLRSchedulerConfig
from torch import nn
from torch.nn import functional as F

from flywheel.families.base import Augment, Objective


class _Running:
    """Per-batch loss and correct-count tensors of one epoch, reduced only at its end.

    Appending costs no device work and no sync; every ``_FOLD`` batches the lists are
    folded into one entry, so a long epoch keeps a bounded number of tensors."""

    _FOLD = 256

    def __init__(self) -> None:
        self.losses: list[torch.Tensor] = []
        self.correct: list[torch.Tensor] = []
        self.sizes: list[int] = []
        self.seen = 0

    def add(self, loss: torch.Tensor, correct: torch.Tensor | None, size: int) -> None:
        self.losses.append(loss.detach())
        if correct is not None:
            self.correct.append(correct)
        self.sizes.append(size)
        self.seen += size
        if len(self.losses) >= self._FOLD:
            loss_mean, correct_sum = self._reduce()
            self.losses, self.sizes = [loss_mean], [self.seen]
            self.correct = [] if correct_sum is None else [correct_sum]

    def _reduce(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        losses = torch.stack(self.losses).float()
        sizes = torch.tensor(self.sizes, dtype=losses.dtype, device=losses.device)
        loss = (losses * sizes).sum() / self.seen
        return loss, torch.stack(self.correct).sum() if self.correct else None

    def means(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(batch-size-weighted mean loss, accuracy or None), as float32 tensors."""
        loss, correct = self._reduce()
        return loss, None if correct is None else correct.float() / self.seen


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
        self._running: dict[str, _Running] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        x, y = batch
        if stage == "train" and self.augment is not None:
            x = self.augment(x)
        out = self(x)
        running = self._running.setdefault(stage, _Running())
        if self.objective == "regression":
            loss = F.mse_loss(out.squeeze(-1), y.float())
            running.add(loss, None, len(y))
        else:
            loss = F.cross_entropy(out, y)
            running.add(loss, (out.argmax(dim=1) == y).sum(), len(y))
        return loss

    def _log_epoch(self, stage: str) -> None:
        """Log ``stage``'s epoch means (one ``self.log`` per name) and start a new epoch."""
        running = self._running.pop(stage, None)
        if running is None or not running.seen:
            return
        loss, score = running.means()
        self.log(f"{stage}_loss", loss, prog_bar=True, on_step=False, on_epoch=True)
        if score is None:  # regression: the RMSE of the epoch
            self.log(f"{stage}_rmse", loss.sqrt(), on_step=False, on_epoch=True)
        else:
            self.log(f"{stage}_acc", score, prog_bar=True, on_step=False, on_epoch=True)

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._step(batch, "test")

    def on_train_epoch_start(self) -> None:
        self._running.pop("train", None)

    def on_validation_epoch_start(self) -> None:
        self._running.pop("val", None)

    def on_test_epoch_start(self) -> None:
        self._running.pop("test", None)

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")
        # Validation runs after the epoch's training batches, before the train-epoch-end
        # hooks: logging the training means here puts train and val of the same epoch in
        # ``callback_metrics`` together, for the curve row and the progress callback.
        if not self.trainer.sanity_checking:
            self._log_epoch("train")

    def on_train_epoch_end(self) -> None:
        self._log_epoch("train")  # only left over when no validation ran after the epoch

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")

    def configure_optimizers(self) -> OptimizerLRSchedulerConfig:
        params = [p for p in self.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=max(1, self.max_epochs)
        )
        return {"optimizer": optimizer, "lr_scheduler": scheduler}
