"""The train stage's metrics and progress reporting: epoch means logged once per epoch.

The module keeps per-batch losses and reduces them at the end of the epoch (no per-step
``self.log``), so the curve row of an epoch must hold that epoch's own mean training loss,
next to the validation metrics of the same epoch; the Prefect progress callback reads the
same values and sends them from a background thread.
"""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from lightning.pytorch.callbacks import Callback

from flywheel.families.image.network import ConvNet
from flywheel.nn import progress as training_progress
from flywheel.nn.fit import fit_network

pytestmark = pytest.mark.slow


class _BatchLosses(Callback):
    """What Lightning hands to ``on_train_batch_end``: each batch's loss and size."""

    def __init__(self) -> None:
        self.epochs: list[list[tuple[float, int]]] = []

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self.epochs.append([])

    def on_train_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self.epochs[-1].append((float(outputs["loss"]), len(batch[1])))


def test_curve_rows_hold_each_epochs_own_means(workspace: Any, tmp_path: Path) -> None:
    seen = _BatchLosses()
    _, fit, rows = fit_network(
        ConvNet(1, 8, 10),
        workspace.params,
        workspace.split("train"),
        workspace.split("val"),
        max_epochs=3,
        checkpoint_dir=tmp_path,
        extra_callbacks=[seen],
    )
    assert [r["epoch"] for r in rows] == [0.0, 1.0, 2.0]
    for row, batches in zip(rows, seen.epochs, strict=True):
        mean = sum(loss * n for loss, n in batches) / sum(n for _, n in batches)
        assert row["train_loss"] == pytest.approx(mean, rel=1e-5)
        assert 0.0 < row["val_score"] <= 1.0 and row["val_loss"] > 0.0
    assert fit.best_val_score == pytest.approx(max(r["val_score"] for r in rows))
    # The checkpoint keeps the weights only: nothing resumes a fit.
    assert (tmp_path / "model.ckpt").is_file()


def test_progress_updates_leave_the_training_thread(
    workspace: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[tuple[float, str, str]] = []

    def slow_update(artifact_id: uuid.UUID, progress: float, description: str) -> None:
        time.sleep(0.05)  # an HTTP round trip
        sent.append((progress, description, threading.current_thread().name))

    monkeypatch.setattr(training_progress, "_update", slow_update)
    monkeypatch.setenv(training_progress.ARTIFACT_ENV, str(uuid.uuid4()))
    monkeypatch.setenv(training_progress.API_ENV, "http://127.0.0.1:1/api")
    fit_network(
        ConvNet(1, 8, 10),
        workspace.params,
        workspace.split("train"),
        workspace.split("val"),
        max_epochs=3,
        checkpoint_dir=tmp_path,
        extra_callbacks=training_progress.callbacks(),
    )
    # Delivered before fit returned, off the main thread, the final state last.
    assert sent and sent[-1][:2] == (100.0, "training finished after 3 epoch(s)")
    assert all(thread != threading.main_thread().name for _, _, thread in sent)
    epochs = [d for _, d, _ in sent if d.startswith("epoch ")]
    assert all("train_loss=" in d and "val_acc=" in d for d in epochs)


def test_sender_keeps_only_the_newest_pending_state(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[float] = []

    def slow_update(artifact_id: uuid.UUID, progress: float, description: str) -> None:
        time.sleep(0.05)
        sent.append(progress)

    monkeypatch.setattr(training_progress, "_update", slow_update)
    sender = training_progress._Sender(uuid.uuid4())
    for i in range(10):
        sender.post(float(i), f"epoch {i}")
    sender.close()
    assert sent[-1] == 9.0 and len(sent) < 10 and sent == sorted(sent)
