"""The training benchmark's workloads: the default dataset through the pipeline's own
preprocessing, and MNIST from ../shared/datasets when it is there."""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import PROJECT, SHARED_DATASETS


@dataclass(frozen=True)
class Workload:
    name: str
    params: Any  # flywheel.core.config.Params
    spec: Any
    train: tuple[np.ndarray, np.ndarray]
    val: tuple[np.ndarray, np.ndarray]
    epochs: int
    repeats: int


def _params(overrides: dict[str, Any]) -> Any:
    import yaml

    from flywheel.core.config import parse_params

    raw = yaml.safe_load((PROJECT / "params.yaml").read_text())
    for section, values in overrides.items():
        raw.setdefault(section, {}).update(values)
    return parse_params(raw, "benchmarks/training.py")


def digits_workload(root: Path, epochs: int, repeats: int) -> Workload:
    """The default dataset through the pipeline's own preprocessing."""
    from flywheel.core.layout import Layout
    from flywheel.datasets.arrays import load_split
    from flywheel.families.image.manifest import build_manifest
    from flywheel.families.image.pixels import PreprocessingSpec
    from flywheel.stages.preprocess import run as run_preprocess

    # No early stop: both sides must run every epoch for a like-for-like rate.
    params = _params({"train": {"patience": epochs + 1, "accelerator": "cpu"}})
    layout = Layout.from_params(params, root)
    data = PROJECT / "data"
    if not data.is_dir():
        from flywheel.datasets.digits import materialise_digits

        data = root / "data"
        materialise_digits(data)
    manifest = layout.accepted_manifest
    manifest.parent.mkdir(parents=True, exist_ok=True)
    build_manifest(data)[["path", "label", "sha256"]].to_csv(manifest, index=False)
    layout = Layout(layout.root, layout.artifacts, layout.registry, layout.expectations, data)
    run_preprocess(params, layout)
    spec = PreprocessingSpec.load(layout.preprocessing_spec)
    return Workload(
        "default (digits 8x8)",
        params,
        spec,
        load_split(layout.split_file("train")),
        load_split(layout.split_file("val")),
        epochs,
        repeats,
    )


def _idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as fh:
        raw = fh.read()
    dims = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def mnist_workload(epochs: int, repeats: int, accelerator: str = "cpu") -> Workload | None:
    folder = SHARED_DATASETS / "mnist"
    images = folder / "t10k-images-idx3-ubyte.gz"
    labels = folder / "t10k-labels-idx1-ubyte.gz"
    if not (images.is_file() and labels.is_file()):
        return None
    from flywheel.families.image.pixels import PreprocessingSpec

    x = _idx(images).astype(np.float32)[:, None] / 255.0
    y = _idx(labels).astype(np.int64)
    mean, std = float(x.mean()), float(x.std())
    x = (x - mean) / std
    order = np.random.default_rng(0).permutation(len(x))
    cut = int(len(x) * 0.85)
    params = _params(
        {
            "image": {"size": 28},
            "train": {"patience": epochs + 1, "accelerator": accelerator},
            "validate": {"min_width": 28, "max_width": 28, "min_height": 28, "max_height": 28},
        }
    )
    labels_ = tuple(str(i) for i in range(10))
    spec = PreprocessingSpec(size=28, mode="L", mean=(mean,), std=(std,), labels=labels_)
    tr, va = order[:cut], order[cut:]
    return Workload("mnist (28x28)", params, spec, (x[tr], y[tr]), (x[va], y[va]), epochs, repeats)
