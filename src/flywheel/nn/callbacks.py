"""Lightning callbacks of every fit: the per-epoch history and a throttled progress bar."""

from __future__ import annotations

import time
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, TQDMProgressBar


class EpochHistory(Callback):
    """Collects one row of metrics per validation epoch for the DVC training-curve plot.

    Read at ``on_validation_end``: the module logs its epoch means (this epoch's training
    loss included) in its own ``on_validation_epoch_end``, which runs after the callbacks'."""

    def __init__(self) -> None:
        self.rows: list[dict[str, float]] = []

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        m = trainer.callback_metrics
        self.rows.append(
            {
                "epoch": float(trainer.current_epoch),
                "train_loss": float(m.get("train_loss", float("nan"))),
                "val_loss": float(m.get("val_loss", float("nan"))),
                # Accuracy for classifiers, RMSE for regressors: one column for the DVC plot.
                "val_score": float(m.get("val_acc", m.get("val_rmse", float("nan")))),
            }
        )


class ThrottledProgressBar(TQDMProgressBar):
    """Lightning's terminal progress bar, redrawn at most every ``min_interval`` seconds.

    The stock bar redraws the terminal line and recomputes its metrics after every batch,
    Python work of the order of a whole step of a small model. The live value shown is
    the last batch's loss, read (a device sync) only when the bar is redrawn."""

    def __init__(self, min_interval: float = 0.2) -> None:
        super().__init__()
        self.min_interval = min_interval
        self._drawn = 0.0

    def _due(self, n: int, total: float | None) -> bool:
        now = time.monotonic()
        if now - self._drawn < self.min_interval and n != total:
            return False
        self._drawn = now
        return True

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        bar = self.train_progress_bar
        if bar is None or bar.disable or not self._due(batch_idx + 1, bar.total):
            return
        bar.n = batch_idx + 1
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        extra = {"train_loss_step": float(loss)} if isinstance(loss, torch.Tensor) else {}
        bar.set_postfix({**self.get_metrics(trainer, pl_module), **extra}, refresh=False)
        bar.refresh()

    def on_validation_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        bar = self.val_progress_bar
        if bar is not None and not bar.disable and self._due(batch_idx + 1, bar.total):
            super().on_validation_batch_end(
                trainer, pl_module, outputs, batch, batch_idx, dataloader_idx
            )
