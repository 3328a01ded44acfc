"""Training progress as a Prefect progress artifact, updated once per epoch.

The flow names the artifact through the environment (``FLYWHEEL_PROGRESS_ARTIFACT_ID`` and
``PREFECT_API_URL``) with :func:`reporting`, which reaches the train stage whether the flow
runs it in its own process or a ``flywheel stage train`` subprocess does. Without both,
:func:`callbacks` returns nothing and training never imports Prefect. Lightning is imported
only when a callback is built.

Each update is an HTTP round trip to the Prefect API (a new client, then a PATCH), so it is
sent from a background thread: training never waits for it. Only the newest pending state
is sent, and the final one is delivered before ``fit`` returns.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import threading
from collections.abc import Iterator
from typing import Any
from uuid import UUID

log = logging.getLogger(__name__)

ARTIFACT_ENV = "FLYWHEEL_PROGRESS_ARTIFACT_ID"
API_ENV = "PREFECT_API_URL"
ARTIFACT_KEY = "training-progress"


def _update(artifact_id: UUID, progress: float, description: str) -> None:
    try:
        from prefect.artifacts import update_progress_artifact

        update_progress_artifact(artifact_id, progress, description=description)
    except Exception as err:
        # A progress bar must never fail a training run.
        log.warning("could not update the progress artifact: %s", err)


class _Sender:
    """Delivers progress updates from one background thread, newest first.

    ``post`` only records the state; a state still unsent when a newer one arrives is
    dropped. ``close`` sends whatever is pending and waits for it (bounded)."""

    def __init__(self, artifact_id: UUID) -> None:
        self.artifact_id = artifact_id
        self._pending: tuple[float, str] | None = None
        self._closing = False
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def post(self, progress: float, description: str) -> None:
        with self._wake:
            self._pending = (progress, description)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="flywheel-progress", daemon=True
                )
                self._thread.start()
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while self._pending is None and not self._closing:
                    self._wake.wait()
                item, self._pending = self._pending, None
                if item is None:  # closing, nothing left to send
                    return
            _update(self.artifact_id, *item)

    def close(self, timeout: float = 30.0) -> None:
        with self._wake:
            self._closing = True
            self._wake.notify()
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                log.warning("the last progress update did not finish in %.0f s", timeout)


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
            self._sender: _Sender | None = None

        def _post(self, progress: float, description: str) -> None:
            if self._sender is None:
                self._sender = _Sender(self.artifact_id)
            self._sender.post(progress, description)

        def _close(self) -> None:
            sender, self._sender = self._sender, None
            if sender is not None:
                sender.close()

        def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            total = max(int(trainer.max_epochs or 1), 1)
            progress = min(100.0, 100.0 * (trainer.current_epoch + 1) / total)
            self._post(progress, _describe(trainer))

        def on_train_end(self, trainer: Any, pl_module: Any) -> None:
            epochs = trainer.current_epoch
            early = trainer.should_stop and epochs < (trainer.max_epochs or epochs + 1)
            note = " (early stopping)" if early else ""
            self._post(100.0, f"training finished after {epochs} epoch(s){note}")
            self._close()

        def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
            self._close()

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
