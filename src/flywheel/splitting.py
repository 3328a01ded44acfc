"""Split helpers shared by every family: seeded stratified splits and train-only statistics."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from flywheel.layout import Layout


def stratified_split(
    labels: np.ndarray | None, val: float, test: float, seed: int, n: int | None = None
) -> dict[str, np.ndarray]:
    """Row indices per split; the same labels and seed always give the same split.
    ``labels=None`` (regression) splits uniformly at random over ``n`` rows."""
    count = len(labels) if labels is not None else int(n or 0)
    index = np.arange(count)
    rest, test_idx = train_test_split(index, test_size=test, stratify=labels, random_state=seed)
    val_share = val / (1.0 - test)
    train_idx, val_idx = train_test_split(
        rest,
        test_size=val_share,
        stratify=labels[rest] if labels is not None else None,
        random_state=seed,
    )
    return {"train": np.sort(train_idx), "val": np.sort(val_idx), "test": np.sort(test_idx)}


def channel_stats(unit: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of an ``(N, C, H, W)`` array, rounded for stable JSON."""
    mean = unit.mean(axis=(0, 2, 3))
    std = unit.std(axis=(0, 2, 3))
    # A constant channel would divide by zero; 1.0 leaves it centred but unscaled.
    std = np.where(std > 1e-6, std, 1.0)
    return tuple(round(float(v), 6) for v in mean), tuple(round(float(v), 6) for v in std)


def write_split_index(
    layout: Layout, accepted: pd.DataFrame, splits: dict[str, np.ndarray]
) -> None:
    """Which example went where, so a person can audit a split (and tests can check leakage)."""
    index = {
        name: sorted(accepted["path"].iloc[idx].astype(str).tolist())
        for name, idx in splits.items()
    }
    (layout.preprocessed_dir / "splits.json").write_text(json.dumps(index, indent=1) + "\n")
