"""Image classification: an image folder (one sub-folder per label) and a small CNN."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from flywheel.core.config import Params
from flywheel.core.errors import InputError
from flywheel.core.layout import Layout
from flywheel.datasets.arrays import save_split
from flywheel.datasets.splitting import stable_split, write_split_index
from flywheel.families.base import Augment, Family, InstanceLimits, StoredInstance
from flywheel.families.image import serving
from flywheel.families.image.augment import random_flip_crop
from flywheel.families.image.manifest import build_manifest
from flywheel.families.image.pixels import (
    PixelBudget,
    PreprocessingSpec,
    channel_stats,
    normalise,
    preprocess_bytes,
    to_unit_array,
    unit_array_from_nested,
)

if TYPE_CHECKING:
    import pandas as pd  # only tables in and out: the family loads without pandas
    from torch import nn


class ImageFamily(Family):
    name = "image_classification"
    data_kinds = ("image_folder",)
    defaults = {"compress": {"variants": ["fp32", "int8", "pruned-fp32", "pruned-int8"]}}
    accepted_columns = ("path", "label", "sha256")

    @classmethod
    def check_params(cls, params: Params) -> None:
        if params.image.mode not in params.validate_.allowed_modes:
            raise ValueError(
                f"image.mode {params.image.mode!r} is not in validate.allowed_modes "
                f"{list(params.validate_.allowed_modes)}"
            )

    def manifest(self, params: Params, data: Path) -> pd.DataFrame:
        return build_manifest(data, params.data.pattern)

    def expectations(self, params: Params, mostly: float) -> list[Any]:
        import great_expectations.expectations as gxe

        v = params.validate_
        labels = sorted(v.labels)
        return [
            # An empty folder must fail loudly instead of training on nothing.
            gxe.ExpectTableRowCountToBeBetween(min_value=v.min_rows),
            # Both a missing class and an unexpected label folder change what the model predicts.
            gxe.ExpectColumnDistinctValuesToEqualSet(column="label", value_set=labels),
            gxe.ExpectColumnValuesToBeInSet(column="label", value_set=labels, mostly=mostly),
            gxe.ExpectColumnValuesToBeInSet(column="readable", value_set=[True], mostly=mostly),
            gxe.ExpectColumnValuesToBeInSet(
                column="mode", value_set=sorted(v.allowed_modes), mostly=mostly
            ),
            gxe.ExpectColumnValuesToBeInSet(
                column="format", value_set=sorted(v.allowed_formats), mostly=mostly
            ),
            gxe.ExpectColumnValuesToBeBetween(
                column="width", min_value=v.min_width, max_value=v.max_width, mostly=mostly
            ),
            gxe.ExpectColumnValuesToBeBetween(
                column="height", min_value=v.min_height, max_value=v.max_height, mostly=mostly
            ),
            gxe.ExpectColumnValuesToBeBetween(
                column="class_count", min_value=v.min_rows_per_class, mostly=mostly
            ),
            # Byte-identical files leak between splits, and across labels they contradict.
            gxe.ExpectColumnValuesToBeUnique(column="sha256", mostly=mostly),
        ]

    def preprocess(self, params: Params, layout: Layout, accepted: pd.DataFrame) -> dict[str, int]:
        from PIL import Image

        index = {label: i for i, label in enumerate(params.labels)}
        y_all = accepted["label"].map(index).to_numpy(dtype=np.int64)

        def load(rel: str) -> np.ndarray:
            with Image.open(layout.data / rel) as image:
                return to_unit_array(image, params.image.size, params.image.mode)

        keys = accepted["sha256"].astype(str).tolist()
        splits = stable_split(keys, params.split.val, params.split.test, params.seed, y_all)
        unit = {
            name: np.stack([load(accepted["path"].iloc[i]) for i in idx])
            for name, idx in splits.items()
        }
        mean, std = channel_stats(unit["train"])
        spec = PreprocessingSpec(
            size=params.image.size, mode=params.image.mode, mean=mean, std=std, labels=params.labels
        )
        for name, idx in splits.items():
            save_split(layout.split_file(name), normalise(unit[name], spec), y_all[idx])
        spec.save(layout.preprocessing_spec)
        write_split_index(layout, accepted, splits)
        return {name: len(idx) for name, idx in splits.items()}

    def load_spec(self, path: Path) -> PreprocessingSpec:
        return PreprocessingSpec.load(path)

    def build_network(self, params: Params, spec: PreprocessingSpec) -> nn.Module:
        from flywheel.families.image.network import ConvNet

        return ConvNet(
            in_channels=spec.channels,
            size=spec.size,
            num_classes=len(spec.labels),
            channels=params.model.channels,
            hidden=params.model.hidden,
            dropout=params.model.dropout,
        )

    def example_batch(self, spec: PreprocessingSpec, batch: int = 1) -> np.ndarray:
        return np.zeros((batch, *spec.input_shape), dtype=np.float32)

    def train_augment(self, params: Params) -> Augment | None:
        return random_flip_crop(max(1, params.image.size // 8)) if params.image.augment else None

    def encode(
        self,
        instances: Sequence[Any],
        spec: PreprocessingSpec,
        limits: InstanceLimits | None = None,
    ) -> np.ndarray:
        total = limits.max_request_pixels if limits else None
        budget = PixelBudget(total) if total else None
        return np.stack(
            [
                self._encode_one(i, instance, spec, limits, budget)
                for i, instance in enumerate(instances)
            ]
        )

    @staticmethod
    def _encode_one(
        i: int,
        instance: Any,
        spec: PreprocessingSpec,
        limits: InstanceLimits | None,
        budget: PixelBudget | None,
    ) -> np.ndarray:
        try:
            if isinstance(instance, bytes | bytearray):
                return preprocess_bytes(bytes(instance), spec, limits, budget)
            if isinstance(instance, dict) and set(instance) == {"b64"}:
                data = serving.b64_bytes(instance["b64"])
                return preprocess_bytes(data, spec, limits, budget)
            if isinstance(instance, list):
                return normalise(unit_array_from_nested(instance, spec.size, spec.channels), spec)
        except InputError as err:
            raise InputError(f"instance {i}: {err}") from None
        raise InputError(
            f"instance {i}: expected {{'b64': <base64 image>}} or a nested pixel array, "
            f"got {type(instance).__name__}"
        )

    def check_instance(self, index: int, instance: Any) -> None:
        serving.check_instance(index, instance)

    def stored_form(
        self, instance: Any, spec: PreprocessingSpec, limits: InstanceLimits | None = None
    ) -> StoredInstance:
        return serving.stored_form(instance, spec, limits)

    def instances_from_rows(self, params: Params, layout: Layout, rows: pd.DataFrame) -> list[Any]:
        return self.read_inputs([layout.data / p for p in rows.index])

    def read_inputs(self, paths: Sequence[Path]) -> list[Any]:
        out = []
        for p in paths:
            try:
                out.append(Path(p).read_bytes())
            except OSError as err:
                raise InputError(f"cannot read {p}: {err.strerror}") from None
        return out
