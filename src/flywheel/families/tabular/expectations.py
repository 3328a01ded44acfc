"""The Great Expectations checks for a tabular regression dataset.

Row-level checks (a value's type, range and category, a required value present, the target
present and finite) take ``mostly``: rows that fail them are quarantined and left out of
training either way, and the run fails only when more than ``1 - mostly`` of the rows fail
one of them. Missing values in a column that allows them (``max_null_share > 0``) are not a
row's fault: they are imputed, and only their share over the whole table is checked.
"""

from __future__ import annotations

from typing import Any

from flywheel.core.config import Params
from flywheel.families.tabular.columns import imputable, table_columns
from flywheel.families.tabular.manifest import valid_column


def tabular_expectations(params: Params, mostly: float) -> list[Any]:
    import great_expectations.expectations as gxe

    v = params.validate_
    cols = table_columns(params)
    checks: list[Any] = [
        # An empty (or nearly empty) table must fail loudly instead of training on nothing.
        gxe.ExpectTableRowCountToBeBetween(min_value=v.min_rows),
        gxe.ExpectColumnValuesToBeInSet(column="valid_encoding", value_set=[True], mostly=mostly),
    ]
    for name in cols.all:
        rule = v.columns.get(name)
        # Text in a numeric column, NaN/Inf, or a value of the wrong type.
        checks.append(
            gxe.ExpectColumnValuesToBeInSet(
                column=valid_column(name), value_set=[True], mostly=mostly
            )
        )
        if name != cols.target and rule is not None and imputable(params, name):
            checks.append(
                gxe.ExpectColumnProportionOfNonNullValuesToBeBetween(
                    column=name, min_value=round(1.0 - rule.max_null_share, 9)
                )
            )
        else:
            # A required feature, or the target: a row without it cannot be used.
            checks.append(gxe.ExpectColumnValuesToNotBeNull(column=name, mostly=mostly))
        if rule is None:
            continue
        if rule.min is not None or rule.max is not None:
            checks.append(
                gxe.ExpectColumnValuesToBeBetween(
                    column=name, min_value=rule.min, max_value=rule.max, mostly=mostly
                )
            )
        if rule.categories is not None:
            checks.append(
                gxe.ExpectColumnValuesToBeInSet(
                    column=name, value_set=sorted(rule.categories), mostly=mostly
                )
            )
    return checks
