"""Preprocessed splits on disk: ``<split>.npz`` with inputs ``x`` and targets ``y``.

``x`` is float32 (images, tables) or int64 token ids (text); ``y`` is int64 class indices or
float32 regression targets. The dtypes are the model's, so they are kept as given.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from torch.utils.data import DataLoader

SPLITS = ("train", "val", "test")


def save_split(path: Path, x: np.ndarray, y: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # np.savez stores no timestamps, so identical arrays give identical bytes (DVC-friendly).
    with path.open("wb") as fh:
        np.savez(fh, x=x, y=y)


def load_split(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with np.load(path) as npz:
        return npz["x"], npz["y"]


def make_loader(
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    *,
    shuffle: bool,
    seed: int = 0,
    num_workers: int = 0,
) -> DataLoader:
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    dataset = TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        generator=generator,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
    )
