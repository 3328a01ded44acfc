"""Train stage: a Lightning ``Trainer`` on the preprocessed splits.

GPU and mixed precision when present, CPU and fp32 otherwise; early stopping on the
validation loss and the best checkpoint (validation accuracy for classifiers, validation
loss for regressors) kept as the result.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint, TQDMProgressBar
from torch import nn

from flywheel.config import Params, TrainConfig
from flywheel.data.arrays import load_split, make_loader
from flywheel.errors import ConfigError
from flywheel.families import get_family
from flywheel.layout import Layout
from flywheel.metrics import compute_metrics
from flywheel.models.supervised import SupervisedModule

log = logging.getLogger(__name__)


def resolve_precision(cfg: TrainConfig) -> tuple[str, str]:
    """(accelerator, precision) for this machine: mixed precision only where a GPU runs it."""
    gpu = torch.cuda.is_available() and cfg.accelerator in ("auto", "gpu")
    if cfg.accelerator == "gpu" and not torch.cuda.is_available():
        raise ConfigError("train.accelerator is 'gpu' but no CUDA device is available")
    accelerator = "gpu" if gpu else "cpu"
    if cfg.precision != "auto":
        return accelerator, "32-true" if cfg.precision == "32" else cfg.precision
    if not gpu:
        return accelerator, "32-true"
    return accelerator, "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"


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


@contextlib.contextmanager
def _quiet_lightning() -> Iterator[None]:
    """Lightning announces the accelerator, advertises a logging service and says why a fit
    stopped on every Trainer; the pipeline reports those itself, once per stage. Its
    warnings still come through."""
    chatty = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    level = chatty.level
    chatty.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            # Lightning 2.6 calls a pytree API that torch 2.13 deprecates; nothing to act on.
            warnings.filterwarnings("ignore", message=".*LeafSpec.*is deprecated")
            yield
    finally:
        chatty.setLevel(level)


@dataclass(frozen=True)
class FitResult:
    best_val_score: float
    epochs_run: int
    seconds: float
    samples_per_s: float
    accelerator: str
    precision: str


def fit_classifier(
    net: nn.Module,
    params: Params,
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    *,
    max_epochs: int,
    checkpoint_dir: Path,
    extra_callbacks: Sequence[Callback] = (),
) -> tuple[nn.Module, FitResult, list[dict[str, float]]]:
    """Fit ``net`` and return it with the best validation weights loaded; the best
    checkpoint is written into ``checkpoint_dir`` (never into the working directory)."""
    cfg = params.train
    accelerator, precision = resolve_precision(cfg)
    # Lightning keeps a module in whatever mode it arrives in; a loaded (eval-mode) net
    # would otherwise fine-tune with frozen BatchNorm statistics.
    net.train()
    family = get_family(params.task)
    module = SupervisedModule(
        net,
        family.objective,
        lr=cfg.lr,
        weight_decay=cfg.weight_decay,
        max_epochs=max_epochs,
        augment=family.train_augment(params),
    )
    history = EpochHistory()
    regression = family.objective == "regression"
    checkpoint = ModelCheckpoint(
        dirpath=checkpoint_dir,
        filename="model",
        monitor="val_loss" if regression else "val_acc",
        mode="min" if regression else "max",
        save_top_k=1,
        # Nothing resumes a fit: the weights are all any reader of the checkpoint loads.
        save_weights_only=True,
        enable_version_counter=False,
    )
    limit = cfg.limit_batches or None
    progress = sys.stderr.isatty()
    with _quiet_lightning():
        trainer = L.Trainer(
            accelerator=accelerator,
            devices=1,
            precision=precision,  # type: ignore[arg-type]
            max_epochs=max_epochs,
            callbacks=[
                EarlyStopping(monitor="val_loss", patience=cfg.patience, mode="min"),
                checkpoint,
                history,
                *([ThrottledProgressBar()] if progress else []),
                *extra_callbacks,
            ],
            logger=False,
            default_root_dir=str(checkpoint_dir),
            enable_checkpointing=True,
            enable_progress_bar=progress,
            enable_model_summary=False,
            deterministic=True,
            limit_train_batches=limit,
            limit_val_batches=limit,
            num_sanity_val_steps=0,
        )
        train_loader = make_loader(
            *train, cfg.batch_size, shuffle=True, seed=params.seed, num_workers=cfg.num_workers
        )
        val_loader = make_loader(*val, 256, shuffle=False, num_workers=cfg.num_workers)
        start = time.perf_counter()
        trainer.fit(module, train_loader, val_loader)
    seconds = time.perf_counter() - start
    best = checkpoint.best_model_path
    if best:
        state = torch.load(best, map_location="cpu", weights_only=False)["state_dict"]
        module.load_state_dict(state)
    net = module.net.cpu().eval()
    epochs = trainer.current_epoch
    seen = len(train[0]) if limit is None else min(len(train[0]), limit * cfg.batch_size)
    result = FitResult(
        best_val_score=float(checkpoint.best_model_score or float("nan")),
        epochs_run=int(epochs),
        seconds=round(seconds, 3),
        samples_per_s=round(seen * max(epochs, 1) / max(seconds, 1e-9), 1),
        accelerator=accelerator,
        precision=precision,
    )
    return net, result, history.rows


@torch.inference_mode()
def predict_outputs(net: nn.Module, x: np.ndarray, batch_size: int = 512) -> np.ndarray:
    net.eval()
    return np.concatenate(
        [
            net(torch.from_numpy(x[i : i + batch_size])).float().numpy()
            for i in range(0, len(x), batch_size)
        ]
    )


def evaluate_network(
    net: nn.Module, params: Params, x: np.ndarray, y: np.ndarray
) -> dict[str, float]:
    return compute_metrics(predict_outputs(net, x), y, params.is_regression)


def accuracy(net: nn.Module, x: np.ndarray, y: np.ndarray, batch_size: int = 512) -> float:
    """Classification accuracy of ``net``; kept for the classifier-only call sites."""
    return compute_metrics(predict_outputs(net, x, batch_size), y, regression=False)["accuracy"]


def load_network(checkpoint: Path, params: Params, spec: Any) -> nn.Module:
    """The trained network from a Lightning checkpoint written by :func:`run_train`."""
    net = get_family(params.task).build_network(params, spec)
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)["state_dict"]
    net.load_state_dict({k.removeprefix("net."): v for k, v in state.items()})
    return net.eval()


def run_train(params: Params, layout: Layout) -> dict[str, object]:
    from flywheel import training_progress  # reports to Prefect only when a flow asked for it

    L.seed_everything(params.seed, workers=True, verbose=False)
    family = get_family(params.task)
    spec = family.load_spec(layout.preprocessing_spec)
    train, val, test = (load_split(layout.split_file(s)) for s in ("train", "val", "test"))
    layout.model_dir.mkdir(parents=True, exist_ok=True)
    net, fit, rows = fit_classifier(
        family.build_network(params, spec),
        params,
        train,
        val,
        max_epochs=params.train.max_epochs,
        checkpoint_dir=layout.model_dir,
        extra_callbacks=training_progress.callbacks(),
    )
    metrics: dict[str, object] = {
        **asdict(fit),
        **{f"val_{k}": round(v, 6) for k, v in evaluate_network(net, params, *val).items()},
        **{f"test_{k}": round(v, 6) for k, v in evaluate_network(net, params, *test).items()},
        "parameters": sum(p.numel() for p in net.parameters()),
    }
    layout.train_metrics.parent.mkdir(parents=True, exist_ok=True)
    layout.train_metrics.write_text(json.dumps(metrics, indent=2) + "\n")
    layout.train_curve.parent.mkdir(parents=True, exist_ok=True)
    header = "epoch,train_loss,val_loss,val_score\n"
    body = "".join(
        f"{int(r['epoch'])},{r['train_loss']:.6f},{r['val_loss']:.6f},{r['val_score']:.6f}\n"
        for r in rows
    )
    layout.train_curve.write_text(header + body)
    tests = {k: v for k, v in metrics.items() if k.startswith("test_")}
    log.info(
        "trained %d epoch(s) in %.1fs on %s (%s): %s",
        fit.epochs_run,
        fit.seconds,
        fit.accelerator,
        fit.precision,
        tests,
    )
    return metrics
