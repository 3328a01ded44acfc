"""Which columns of the table the model uses, named once from ``params.data``.

Columns are named by their params reference as text (a header name, or a 0-based position
for files without a header), so the manifest, the suite, the spec and a client's records all
use the same keys without reading the data first.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from flywheel.core.config import Params
from flywheel.core.errors import ConfigError
from flywheel.core.sections import ColumnRule
from flywheel.datasets.tables import column


@dataclass(frozen=True)
class TableColumns:
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    target: str

    @property
    def features(self) -> tuple[str, ...]:
        return self.numeric + self.categorical

    @property
    def all(self) -> tuple[str, ...]:
        return (*self.features, self.target)

    def select(self, table: pd.DataFrame) -> pd.DataFrame:
        """The configured columns of ``table`` under their configured names; a configured
        column the table lacks comes back empty (all missing), for the suite to reject."""
        out = pd.DataFrame(index=table.index)
        for name in self.all:
            try:
                out[name] = column(table, name, f"column {name!r}").astype(object)
            except ValueError:
                out[name] = pd.Series([None] * len(table), index=table.index, dtype=object)
        return out


def table_columns(params: Params) -> TableColumns:
    """The configured columns; :class:`ConfigError` for a configuration that cannot work."""
    data = params.data
    numeric = tuple(str(c) for c in data.numeric_columns)
    categorical = tuple(str(c) for c in data.categorical_columns)
    target = str(data.target)
    if not numeric and not categorical:
        raise ConfigError("data.numeric_columns and data.categorical_columns are both empty")
    named = [*numeric, *categorical]
    repeated = sorted({c for c in named if named.count(c) > 1})
    if repeated:
        raise ConfigError(f"columns listed more than once in data.*_columns: {repeated}")
    if target in named:
        raise ConfigError(f"data.target {target!r} is also listed as a feature column")
    cols = TableColumns(numeric, categorical, target)
    _check_rules(params.validate_.columns, cols)
    return cols


def _check_rules(rules: dict[str, ColumnRule], cols: TableColumns) -> None:
    unknown = sorted(set(rules) - set(cols.all))
    if unknown:
        raise ConfigError(
            f"validate.columns names columns that are not configured in data: {unknown}"
        )
    for name, rule in rules.items():
        if name in cols.categorical and (rule.min is not None or rule.max is not None):
            raise ConfigError(f"validate.columns.{name}: min/max apply to numeric columns only")
        if name not in cols.categorical and rule.categories is not None:
            raise ConfigError(
                f"validate.columns.{name}: categories apply to categorical columns only"
            )
        if rule.min is not None and rule.max is not None and rule.min > rule.max:
            raise ConfigError(f"validate.columns.{name}: min is larger than max")


def imputable(params: Params, name: str) -> bool:
    """A feature may be missing (and is imputed) only where its rule allows some nulls."""
    rule = params.validate_.columns.get(name)
    return rule is not None and rule.max_null_share > 0.0
