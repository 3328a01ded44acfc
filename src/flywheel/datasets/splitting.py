"""Split helpers shared by every family: stable, content-keyed splits and train-only statistics."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from flywheel.core.layout import Layout

if TYPE_CHECKING:
    import pandas as pd


def stable_split(
    keys: Sequence[str], val: float, test: float, seed: int, labels: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Row indices per split, decided row by row from a hash of ``seed`` and the row's key
    (its content hash), never from the row's position among the others.

    New data therefore never moves an old example: an image in production's training split
    stays in training when feedback arrives, so the gate never scores production on examples
    it learnt from. Rows with equal keys (the same content) always share a split. Shares
    per class follow ``val``/``test`` up to sampling noise; in a class of three rows or more,
    a split that drew none takes one row from the class's largest split.
    """
    if len(keys) == 0:
        raise ValueError("no rows to split")
    draw = np.array([_unit_hash(seed, key) for key in keys])
    which = np.where(draw < test, 2, np.where(draw < test + val, 1, 0))
    groups = (
        [np.arange(len(keys))]
        if labels is None
        else [np.flatnonzero(labels == label) for label in np.unique(labels)]
    )
    for members in groups:
        if len(members) >= 3:
            _fill_empty_splits(which, draw, members)
    return {
        name: np.flatnonzero(which == code) for code, name in enumerate(("train", "val", "test"))
    }


def _fill_empty_splits(which: np.ndarray, draw: np.ndarray, members: np.ndarray) -> None:
    for code in (0, 2, 1):  # train first: a class the model never sees cannot be scored
        if (which[members] == code).any():
            continue
        largest = int(np.bincount(which[members], minlength=3).argmax())
        donors = members[which[members] == largest]
        which[donors[np.argmin(draw[donors])]] = code


def _unit_hash(seed: int, key: str) -> float:
    digest = hashlib.sha256(f"{seed}\0{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def write_split_index(
    layout: Layout, accepted: pd.DataFrame, splits: dict[str, np.ndarray]
) -> None:
    """Which example went where, so a person can audit a split (and tests can check leakage)."""
    index = {
        name: sorted(accepted["path"].iloc[idx].astype(str).tolist())
        for name, idx in splits.items()
    }
    layout.split_index.write_text(json.dumps(index, indent=1) + "\n")
