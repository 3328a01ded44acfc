"""The table the suite checks: one row per data row, each configured column parsed.

Bad content is recorded, never raised: a cell that is not a valid value for its column
becomes missing in the column itself, ``False`` in ``<column>__valid`` and ``column='text'``
in ``invalid_values`` (so the quarantine report shows what was there). Such a cell is
missing as well, so it also counts against the column's null checks: its row is named by
both. A configured column the file lacks comes back all missing, which its null checks
reject by name.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from flywheel.core.config import Params
from flywheel.datasets.tables import read_table
from flywheel.families.tabular.columns import TableColumns, table_columns
from flywheel.families.tabular.values import CellError, cell, parse_category, parse_number

VALID_SUFFIX = "__valid"
INVALID_VALUES = "invalid_values"


def valid_column(name: str) -> str:
    return f"{name}{VALID_SUFFIX}"


def _parse_column(
    raw: pd.Series, parse: Callable[[Any], Any]
) -> tuple[list[Any], list[bool], list[str]]:
    values: list[Any] = []
    valid: list[bool] = []
    shown: list[str] = []
    for value in map(cell, raw):
        try:
            values.append(parse(value))
            valid.append(True)
            shown.append("")
        except CellError:
            values.append(None)
            valid.append(False)
            shown.append(repr(value)[:40])
    return values, valid, shown


def build_tabular_manifest(params: Params, data: Path) -> pd.DataFrame:
    return manifest_from_table(read_table(data, params.data), table_columns(params))


def manifest_from_table(table: pd.DataFrame, cols: TableColumns) -> pd.DataFrame:
    raw = cols.select(table)
    out = pd.DataFrame({"path": table["path"].astype(str).to_numpy()}, index=table.index)
    out["valid_encoding"] = table["valid_encoding"].astype(bool)
    invalid: list[list[str]] = [[] for _ in range(len(table))]
    for name in cols.all:
        is_category = name in cols.categorical
        values, valid, shown = _parse_column(
            raw[name], parse_category if is_category else parse_number
        )
        out[name] = (
            pd.Series(values, index=table.index, dtype=object)
            if is_category
            else pd.Series(values, index=table.index, dtype="float64")
        )
        out[valid_column(name)] = valid
        for row, text in enumerate(shown):
            if text:
                invalid[row].append(f"{name}={text}")
    out[INVALID_VALUES] = ["; ".join(v) for v in invalid]
    return out.reset_index(drop=True)
