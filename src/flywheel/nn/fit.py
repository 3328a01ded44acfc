"""Fitting a family's network with a Lightning ``Trainer``: the one training loop.

GPU and mixed precision when present, CPU and fp32 otherwise; early stopping on the
validation loss and the best checkpoint (validation accuracy for classifiers, validation
loss for regressors) kept as the result. The train stage and the pruned variants' fine-tune
both fit through :func:`fit_network`.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint
from torch import nn

from flywheel.core.config import Params
from flywheel.core.errors import ConfigError
from flywheel.core.sections import TrainConfig
from flywheel.datasets.arrays import make_loader
from flywheel.families import get_family
from flywheel.nn import distributed
from flywheel.nn.callbacks import EpochHistory, ThrottledProgressBar
from flywheel.nn.module import SupervisedModule


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
    processes: int = 1
    # The collective backend the ranks talked over (gloo on CPU, nccl on GPUs); None alone.
    backend: str | None = None


def _backend() -> str | None:
    dist = torch.distributed
    return str(dist.get_backend()) if dist.is_available() and dist.is_initialized() else None


def _best_checkpoint(checkpoint_dir: Path, regression: bool) -> ModelCheckpoint:
    return ModelCheckpoint(
        dirpath=checkpoint_dir,
        filename="model",
        monitor="val_loss" if regression else "val_acc",
        mode="min" if regression else "max",
        save_top_k=1,
        # Nothing resumes a fit: the weights are all any reader of the checkpoint loads.
        save_weights_only=True,
        enable_version_counter=False,
    )


def _trainer(
    params: Params, max_epochs: int, checkpoint_dir: Path, callbacks: Sequence[Callback]
) -> tuple[L.Trainer, str, str]:
    cfg = params.train
    accelerator, precision = resolve_precision(cfg)
    limit = cfg.limit_batches or None
    progress = sys.stderr.isatty()
    # In a torchrun rank, join the others (Lightning reads the TorchElastic environment);
    # anywhere else one process trains (the train stage launches torchrun when asked).
    ranks = distributed.inside_launcher()
    trainer = L.Trainer(
        accelerator=accelerator,
        devices=cfg.devices if ranks else 1,
        num_nodes=cfg.num_nodes if ranks else 1,
        strategy="ddp" if ranks else "auto",
        precision=precision,  # type: ignore[arg-type]
        max_epochs=max_epochs,
        callbacks=[
            EarlyStopping(monitor="val_loss", patience=cfg.patience, mode="min"),
            *callbacks,
            *([ThrottledProgressBar()] if progress else []),
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
    return trainer, accelerator, precision


def fit_network(
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
    checkpoint = _best_checkpoint(checkpoint_dir, family.objective == "regression")
    with _quiet_lightning():
        trainer, accelerator, precision = _trainer(
            params, max_epochs, checkpoint_dir, [checkpoint, history, *extra_callbacks]
        )
        train_loader = make_loader(
            *train,
            distributed.per_device_batch(cfg),
            shuffle=True,
            seed=params.seed,
            num_workers=cfg.num_workers,
        )
        val_loader = make_loader(*val, 256, shuffle=False, num_workers=cfg.num_workers)
        start = time.perf_counter()
        trainer.fit(module, train_loader, val_loader)
    seconds = time.perf_counter() - start
    if checkpoint.best_model_path:
        state = torch.load(checkpoint.best_model_path, map_location="cpu", weights_only=True)
        module.load_state_dict(state["state_dict"])
    epochs = trainer.current_epoch
    limit = cfg.limit_batches or None
    seen = len(train[0]) if limit is None else min(len(train[0]), limit * cfg.batch_size)
    result = FitResult(
        best_val_score=float(checkpoint.best_model_score or float("nan")),
        epochs_run=int(epochs),
        seconds=round(seconds, 3),
        samples_per_s=round(seen * max(epochs, 1) / max(seconds, 1e-9), 1),
        accelerator=accelerator,
        precision=precision,
        processes=int(trainer.world_size),
        backend=_backend(),
    )
    return module.net.cpu().eval(), result, history.rows
