"""Preprocess stage: seeded stratified split, decode, normalise with training-split statistics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from flywheel.config import Params
from flywheel.data.arrays import save_split
from flywheel.data.images import PreprocessingSpec, normalise, to_unit_array
from flywheel.layout import Layout


def stratified_split(
    labels: np.ndarray, val: float, test: float, seed: int
) -> dict[str, np.ndarray]:
    """Row indices per split; the same labels and seed always give the same split."""
    index = np.arange(len(labels))
    rest, test_idx = train_test_split(index, test_size=test, stratify=labels, random_state=seed)
    val_share = val / (1.0 - test)
    train_idx, val_idx = train_test_split(
        rest, test_size=val_share, stratify=labels[rest], random_state=seed
    )
    return {"train": np.sort(train_idx), "val": np.sort(val_idx), "test": np.sort(test_idx)}


def channel_stats(unit: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    mean = unit.mean(axis=(0, 2, 3))
    # A constant channel would divide by zero; 1.0 leaves it centred but unscaled.
    std = np.where(unit.std(axis=(0, 2, 3)) > 1e-6, unit.std(axis=(0, 2, 3)), 1.0)
    return tuple(round(float(v), 6) for v in mean), tuple(round(float(v), 6) for v in std)


def run_preprocess(params: Params, layout: Layout, accepted_manifest: Path) -> dict[str, int]:
    from PIL import Image

    manifest = pd.read_csv(accepted_manifest, dtype={"label": str})
    labels = params.labels
    label_index = {label: i for i, label in enumerate(labels)}
    y_all = manifest["label"].map(label_index).to_numpy()
    if np.isnan(y_all.astype(float)).any():
        unknown = sorted(set(manifest["label"]) - set(labels))
        raise ValueError(f"accepted manifest holds labels not in validate.labels: {unknown}")
    y_all = y_all.astype(np.int64)

    def load(rel: str) -> np.ndarray:
        with Image.open(layout.data / rel) as image:
            return to_unit_array(image, params.image.size, params.image.mode)

    splits = stratified_split(y_all, params.split.val, params.split.test, params.seed)
    unit = {
        name: np.stack([load(manifest["path"].iloc[i]) for i in idx])
        for name, idx in splits.items()
    }
    mean, std = channel_stats(unit["train"])
    spec = PreprocessingSpec(
        size=params.image.size, mode=params.image.mode, mean=mean, std=std, labels=tuple(labels)
    )
    for name, idx in splits.items():
        save_split(layout.split_file(name), normalise(unit[name], spec), y_all[idx])
    spec.save(layout.preprocessing_spec)
    counts = {name: len(idx) for name, idx in splits.items()}
    (layout.preprocessed_dir / "splits.json").write_text(
        json.dumps(
            {name: sorted(manifest["path"].iloc[idx].tolist()) for name, idx in splits.items()},
            indent=1,
        )
        + "\n"
    )
    return counts
