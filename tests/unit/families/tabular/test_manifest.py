"""The tabular manifest records bad cells as findings (never raises) and the column config
is checked before anything runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from flywheel.core.config import Params, parse_params
from flywheel.core.errors import ConfigError
from flywheel.families.tabular.columns import table_columns
from flywheel.families.tabular.expectations import tabular_expectations
from flywheel.families.tabular.manifest import INVALID_VALUES, build_tabular_manifest


def params(**data: Any) -> Params:
    validate = data.pop("validate", {})
    base = {"kind": "table", "target": "y", "numeric_columns": ["a"], "categorical_columns": []}
    return parse_params(
        {
            "task": "tabular_regression",
            "data": {**base, **data},
            "validate": validate,
            "gate": {"metric": "rmse"},
        }
    )


def test_manifest_parses_and_flags(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_bytes(
        b"a,b,c,y\n1.5,x,1,10\n,y,2,11\nabc,x,3,inf\n2,,4,\n3,x,5,nan\n"
    )
    p = params(numeric_columns=["a"], categorical_columns=["b"])
    m = build_tabular_manifest(p, tmp_path)
    assert list(m["path"]) == [f"t.csv:{i}" for i in range(1, 6)]
    np.testing.assert_array_equal(m["a"].to_numpy()[[0, 3, 4]], [1.5, 2.0, 3.0])
    assert m["a"].isna().tolist() == [False, True, True, False, False]
    # A blank is missing (a null-share question); text is a type finding.
    assert m["a__valid"].tolist() == [True, True, False, True, True]
    assert m["b"].tolist()[:2] == ["x", "y"] and m["b"].isna().tolist()[3]
    assert m["y__valid"].tolist() == [True, True, False, True, False]
    assert m["y"].isna().tolist() == [False, False, True, True, True]
    assert m[INVALID_VALUES].tolist()[2] == "a='abc'; y='inf'"
    assert "c" not in m.columns  # unconfigured columns are not the suite's business


def test_missing_column_and_empty_table_are_findings(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("a,other\n1,2\n")
    m = build_tabular_manifest(params(), tmp_path)
    assert m["y"].isna().all() and m["y__valid"].all()
    (tmp_path / "t.csv").write_text("")
    assert len(build_tabular_manifest(params(), tmp_path)) == 0


def test_bad_encoding_is_a_finding(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_bytes(b"a,y\n1,2\n3,\xff\n")
    m = build_tabular_manifest(params(), tmp_path)
    assert m["valid_encoding"].tolist() == [True, False]


def test_parquet_nulls_are_missing(tmp_path: Path) -> None:
    pd.DataFrame({"a": [1.0, np.nan], "y": [1.0, 2.0]}).to_parquet(tmp_path / "t.parquet")
    m = build_tabular_manifest(params(), tmp_path)
    assert m["a__valid"].all() and m["a"].isna().tolist() == [False, True]


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"numeric_columns": []}, "both empty"),
        ({"numeric_columns": ["a", "a"]}, "more than once"),
        ({"numeric_columns": ["a", "y"]}, "also listed as a feature"),
        ({"validate": {"columns": {"zzz": {"min": 0}}}}, "not configured"),
        ({"validate": {"columns": {"a": {"categories": ["x"]}}}}, "categorical columns only"),
        ({"validate": {"columns": {"a": {"min": 2, "max": 1}}}}, "min is larger"),
        (
            {"categorical_columns": ["b"], "validate": {"columns": {"b": {"max": 1}}}},
            "numeric columns only",
        ),
    ],
)
def test_column_config_errors(data: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        table_columns(params(**data))


def test_expectations_follow_the_rules() -> None:
    p = params(
        numeric_columns=["a", "n"],
        categorical_columns=["b"],
        validate={
            "min_rows": 5,
            "columns": {
                "a": {"min": 0, "max": 10},
                "n": {"max_null_share": 0.1},
                "b": {"categories": ["y", "x"]},
            },
        },
    )
    found = {
        (type(e).__name__, getattr(e, "column", None)): e for e in tabular_expectations(p, 0.9)
    }
    assert found[("ExpectColumnValuesToBeBetween", "a")].min_value == 0
    assert found[("ExpectColumnValuesToBeInSet", "b")].value_set == ["x", "y"]
    # An imputable column: only its share of nulls is checked, not each null row.
    assert ("ExpectColumnValuesToNotBeNull", "n") not in found
    share = found[("ExpectColumnProportionOfNonNullValuesToBeBetween", "n")]
    assert share.min_value == pytest.approx(0.9)
    # Required columns and the target: a missing value is the row's fault.
    for col in ("a", "b", "y"):
        assert found[("ExpectColumnValuesToNotBeNull", col)].mostly == 0.9
    for col in ("a", "n", "b", "y"):
        assert found[("ExpectColumnValuesToBeInSet", f"{col}__valid")].mostly == 0.9
