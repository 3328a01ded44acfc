"""scikit-learn's bundled diabetes data (no download) as a CSV for the tabular tests.

442 rows, ten numeric columns and the target ``progression``, plus an added categorical
column (``age_band``) and some blank ``bp`` cells (every 30th row), so the tests exercise
one-hot encoding and imputation on real values. Helpers break copies of it on purpose.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pandas as pd

NUMERIC = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]
TARGET = "progression"
AGE_BANDS = ["40-59", "60+", "under 40"]

DIABETES_PARAMS: dict[str, Any] = {
    "task": "tabular_regression",
    "data": {
        "kind": "table",
        "target": TARGET,
        "numeric_columns": NUMERIC,
        "categorical_columns": ["age_band"],
    },
    "validate": {
        "suite": "diabetes",
        "mostly": 0.95,
        "min_rows": 100,
        "columns": {
            "bmi": {"min": 10, "max": 60},
            "bp": {"min": 40, "max": 160, "max_null_share": 0.05},
            "s1": {"min": 50, "max": 400},
            "age_band": {"categories": AGE_BANDS},
            TARGET: {"min": 0, "max": 400},
        },
    },
    "split": {"val": 0.15, "test": 0.2},
    "model": {"hidden": [32], "dropout": 0.0},
    "train": {"max_epochs": 40, "batch_size": 32, "lr": 0.01, "patience": 8},
    "gate": {"metric": "r2", "min_r2": 0.3, "min_accuracy": None, "max_drop": 0.03},
}


def diabetes_params(**overrides: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of :data:`DIABETES_PARAMS` with sections updated by ``overrides``."""
    raw = copy.deepcopy(DIABETES_PARAMS)
    for section, values in overrides.items():
        raw.setdefault(section, {}).update(values)
    return raw


def diabetes_frame() -> pd.DataFrame:
    from sklearn.datasets import load_diabetes

    data = load_diabetes(as_frame=True, scaled=False)
    frame = data.frame.rename(columns={"target": TARGET})
    frame.insert(
        len(NUMERIC),
        "age_band",
        pd.cut(frame["age"], [0, 39, 59, 200], labels=["under 40", "40-59", "60+"]).astype(str),
    )
    frame = frame.astype({"bp": object})
    frame.loc[frame.index % 30 == 7, "bp"] = None
    return frame


def write_diabetes(path: Path, frame: pd.DataFrame | None = None) -> pd.DataFrame:
    """Write ``frame`` (default: :func:`diabetes_frame`) as ``path``; returns what was written."""
    frame = diabetes_frame() if frame is None else frame
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False, lineterminator="\n")
    return frame


def with_few_bad_rows(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[int, str]]:
    """Six broken rows (1.4% of the table); returns the copy and {row index: what broke}."""
    bad = frame.astype(object).copy()
    broken = {
        3: "expect_column_values_to_be_in_set(bmi__valid)",  # text in a number column
        50: "expect_column_values_to_not_be_null(bmi)",  # ... which is missing, too
        99: "expect_column_values_to_be_in_set(bmi__valid)",
        120: "expect_column_values_to_be_between(s1)",  # out of range
        200: "expect_column_values_to_be_between(s1)",
        300: f"expect_column_values_to_not_be_null({TARGET})",  # no target
    }
    bad.loc[[3, 50, 99], "bmi"] = "n/a"
    bad.loc[[120, 200], "s1"] = -5
    bad.loc[300, TARGET] = None
    return bad, broken


def mostly_broken(frame: pd.DataFrame) -> pd.DataFrame:
    """Text in ``bmi`` on two rows in five: far beyond what ``mostly=0.95`` forgives."""
    bad = frame.astype(object).copy()
    bad.loc[bad.index % 5 < 2, "bmi"] = "unknown"
    return bad
