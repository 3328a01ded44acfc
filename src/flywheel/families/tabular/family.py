"""Tabular regression: a CSV/TSV/Parquet table with numeric and categorical columns.

Instances (what a client sends, what ``flywheel predict`` reads from a CSV file, one per
row) are records ``{column: value}``. The accepted manifest keeps only each row's ``path``
(``<file>:<row>``): the preprocess stage and the gate read the rows' values from the data
itself (a DVC dependency of both), so no stage stores a second copy of the table.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from flywheel.core.config import Params
from flywheel.core.errors import InputError
from flywheel.core.layout import Layout
from flywheel.core.sections import DataConfig
from flywheel.datasets.arrays import save_split
from flywheel.datasets.splitting import stable_split, write_split_index
from flywheel.datasets.tables import TableError, column, read_one, read_table
from flywheel.families.base import Family, InstanceLimits
from flywheel.families.tabular.columns import TableColumns, imputable, table_columns
from flywheel.families.tabular.expectations import tabular_expectations
from flywheel.families.tabular.manifest import build_tabular_manifest
from flywheel.families.tabular.preprocessing import TabularSpec, fit_spec
from flywheel.families.tabular.values import CellError, cell, cell_records, parse_number

if TYPE_CHECKING:
    from torch import nn


def records(rows: pd.DataFrame, cols: TableColumns) -> list[dict[str, Any]]:
    """Rows of the table as client records: the feature columns, blanks as ``None``."""
    return cell_records(cols.select(rows)[list(cols.features)])


def targets(rows: pd.DataFrame, cols: TableColumns) -> np.ndarray:
    """The target column as float32; a row without a finite target is a ``ValueError``
    (validation quarantines such rows, so this only fires on unvalidated data)."""
    out = np.empty(len(rows), dtype=np.float32)
    values = column(rows, cols.target, "data.target")
    for i, (where, value) in enumerate(zip(rows.index, values, strict=True)):
        try:
            number = parse_number(cell(value))
        except CellError as err:
            raise ValueError(f"{where}: target {cols.target!r}: {err}") from None
        if number is None:
            raise ValueError(f"{where}: target {cols.target!r} is missing")
        out[i] = number
    return out


class TabularFamily(Family):
    name = "tabular_regression"
    objective = "regression"
    data_kinds = ("table",)
    # Every variant applies to an MLP and evaluate picks by measurement: on small MLPs INT8
    # can be smaller yet slower than fp32, since quantize/dequantize costs more than such
    # small matmuls save (benchmarks/REPORT.md has the figures).
    variants = ("fp32", "int8", "pruned-fp32", "pruned-int8", "dynamic-int8")
    defaults = {
        "data": {"kind": "table"},
        "gate": {"metric": "r2", "min_accuracy": None},
        "model": {"hidden": [128, 64], "dropout": 0.0},
        "train": {"batch_size": 256, "max_epochs": 60, "patience": 10},
        "compress": {
            "variants": ["fp32", "int8", "pruned-fp32", "pruned-int8", "dynamic-int8"],
        },
    }
    accepted_columns = ("path",)

    def manifest(self, params: Params, data: Path) -> pd.DataFrame:
        return build_tabular_manifest(params, data)

    def expectations(self, params: Params, mostly: float) -> list[Any]:
        return tabular_expectations(params, mostly)

    def _rows(self, params: Params, layout: Layout, paths: Sequence[str]) -> pd.DataFrame:
        """The data rows named by ``paths`` (``<file>:<row>``), in that order."""
        table = read_table(layout.data, params.data).set_index("path", drop=False)
        absent = [p for p in paths if p not in table.index]
        if absent:
            raise ValueError(
                f"{len(absent)} row(s) named by the split are not in {layout.data} "
                f"(first: {absent[0]}); the data changed after validation"
            )
        return table.loc[list(paths)]

    def preprocess(self, params: Params, layout: Layout, accepted: pd.DataFrame) -> dict[str, int]:
        cols = table_columns(params)
        rows = self._rows(params, layout, accepted["path"].astype(str).tolist())
        raw, y = records(rows, cols), targets(rows, cols)
        # A row's content is its identity: appended rows never move the old ones.
        keys = [
            json.dumps([r, float(t)], sort_keys=True, default=str)
            for r, t in zip(raw, y, strict=True)
        ]
        splits = stable_split(keys, params.split.val, params.split.test, params.seed)
        train = splits["train"]
        spec = fit_spec(
            [raw[i] for i in train],
            y[train],
            numeric=cols.numeric,
            categorical=cols.categorical,
            nullable=[c for c in cols.features if imputable(params, c)],
            target=cols.target,
        )
        # The very function the server runs: training inputs cannot drift from serving's.
        x = spec.encode(raw)
        for name, idx in splits.items():
            save_split(layout.split_file(name), x[idx], y[idx])
        spec.save(layout.preprocessing_spec)
        write_split_index(layout, accepted, splits)
        return {name: len(idx) for name, idx in splits.items()}

    def load_spec(self, path: Path) -> TabularSpec:
        return TabularSpec.load(path)

    def build_network(self, params: Params, spec: TabularSpec) -> nn.Module:
        from flywheel.families.tabular.network import TabularRegressor

        return TabularRegressor(
            spec.n_features,
            params.model.hidden,
            params.model.dropout,
            spec.target_mean,
            spec.target_std,
        )

    def example_batch(self, spec: TabularSpec, batch: int = 1) -> np.ndarray:
        return np.zeros((batch, spec.n_features), dtype=np.float32)

    def encode(
        self, instances: Sequence[Any], spec: TabularSpec, limits: InstanceLimits | None = None
    ) -> np.ndarray:
        return spec.encode(instances, strict=limits is not None)

    def raw_split(self, params: Params, layout: Layout, split: str) -> tuple[list[Any], np.ndarray]:
        paths = json.loads(layout.split_index.read_text())[split]
        rows = self._rows(params, layout, paths)
        cols = table_columns(params)
        return records(rows, cols), targets(rows, cols)

    def instances_from_rows(self, params: Params, layout: Layout, rows: pd.DataFrame) -> list[Any]:
        cols = table_columns(params)
        if not set(cols.features) <= {str(c) for c in rows.columns}:
            # Accepted-manifest rows carry only their path: read their values from the data.
            rows = self._rows(params, layout, [str(p) for p in rows.index])
        return records(rows, cols)

    def targets_from_rows(self, params: Params, rows: pd.DataFrame) -> np.ndarray:
        return targets(rows, table_columns(params))

    def read_inputs(self, paths: Sequence[Path]) -> list[Any]:
        out: list[Any] = []
        for p in paths:
            try:
                frame = read_one(Path(p), DataConfig(kind="table"))
            except OSError as err:
                raise InputError(f"cannot read {p}: {err.strerror}") from None
            except TableError as err:
                raise InputError(str(err)) from None
            out += cell_records(frame)
        return out
