"""Training progress as a Prefect progress artifact, updated once per epoch.

The train stage runs inside ``dvc repro`` in another process, so the flow hands over the
artifact through the environment (``FLYWHEEL_PROGRESS_ARTIFACT_ID`` and ``PREFECT_API_URL``)
with :func:`reporting`. Without both, :func:`callbacks` returns nothing and training never
imports Prefect. Lightning is imported only when a callback is built, so the flow process
(which only uses :func:`reporting`) never loads torch.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from collections.abc import Iterator
from typing import Any
from uuid import UUID

log = logging.getLogger(__name__)

ARTIFACT_ENV = "FLYWHEEL_PROGRESS_ARTIFACT_ID"
API_ENV = "PREFECT_API_URL"
ARTIFACT_KEY = "training-progress"


def _update(artifact_id: UUID, progress: float, description: str) -> None:
    from prefect.artifacts import update_progress_artifact

    try:
        update_progress_artifact(artifact_id, progress, description=description)
    except Exception as err:
        # A progress bar must never fail a training run.
        log.warning("could not update the progress artifact: %s", err)


def _describe(trainer: Any) -> str:
    done, total = trainer.current_epoch + 1, max(int(trainer.max_epochs or 1), 1)
    metrics = trainer.callback_metrics
    shown = ", ".join(
        f"{key}={float(metrics[key]):.4f}"
        for key in ("train_loss", "val_loss", "val_acc", "val_rmse")
        if key in metrics
    )
    return f"epoch {done}/{total}" + (f": {shown}" if shown else "")


@functools.cache
def _progress_callback_class() -> type[Any]:
    from lightning.pytorch.callbacks import Callback

    class PrefectProgress(Callback):
        """Moves a progress artifact from 0 to 100 % as epochs finish."""

        def __init__(self, artifact_id: UUID) -> None:
            self.artifact_id = artifact_id

        def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            total = max(int(trainer.max_epochs or 1), 1)
            progress = min(100.0, 100.0 * (trainer.current_epoch + 1) / total)
            _update(self.artifact_id, progress, _describe(trainer))

        def on_train_end(self, trainer: Any, pl_module: Any) -> None:
            epochs = trainer.current_epoch
            early = trainer.should_stop and epochs < (trainer.max_epochs or epochs + 1)
            note = " (early stopping)" if early else ""
            _update(self.artifact_id, 100.0, f"training finished after {epochs} epoch(s){note}")

    return PrefectProgress


def callbacks() -> list[Any]:
    """The progress callback when the flow asked for one, else nothing."""
    raw = os.environ.get(ARTIFACT_ENV)
    if not raw or not os.environ.get(API_ENV):
        return []
    try:
        artifact_id = UUID(raw)
    except ValueError:
        log.warning("ignoring malformed %s=%r", ARTIFACT_ENV, raw)
        return []
    return [_progress_callback_class()(artifact_id)]


@contextlib.contextmanager
def reporting(artifact_id: UUID | None, api_url: str | None) -> Iterator[None]:
    """Expose the artifact to subprocesses started inside the block (the DVC train stage)."""
    if artifact_id is None or not api_url:
        yield
        return
    saved = {key: os.environ.get(key) for key in (ARTIFACT_ENV, API_ENV)}
    os.environ[ARTIFACT_ENV] = str(artifact_id)
    os.environ[API_ENV] = api_url
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
