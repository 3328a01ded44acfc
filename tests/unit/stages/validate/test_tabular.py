"""The tabular suite end to end (Great Expectations over the manifest of a diabetes CSV).

``validate.mostly`` at 0.95: a few broken rows are quarantined, left out of training and the
run goes on; a mostly broken table, too many blanks or a missing target column fail the run,
naming the expectation. One GX project is shared by the module (scaffolding is the slow part).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from tests.tabular_data import (
    TARGET,
    diabetes_frame,
    diabetes_params,
    mostly_broken,
    with_few_bad_rows,
    write_diabetes,
)

from flywheel.core.config import Params, parse_params
from flywheel.core.errors import DataValidationError
from flywheel.core.layout import Layout
from flywheel.stages.preprocess import run as run_preprocess
from flywheel.stages.validate import save_suite, validate_dataset

FILE = "diabetes.csv"


def path_of(index: int) -> str:
    return f"{FILE}:{index + 1}"


def make_params(**validate: Any) -> Params:
    return parse_params(diabetes_params(validate=validate))


@pytest.fixture(scope="module")
def shared_expectations(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("gx-tabular")
    for params in (make_params(), make_params(suite="diabetes-strict", mostly=1.0)):
        save_suite(params, Layout.from_params(params, root))
    return root / "expectations"


@pytest.fixture
def layout_for(tmp_path: Path, shared_expectations: Path) -> Callable[..., Layout]:
    def make(params: Params, frame: pd.DataFrame) -> Layout:
        base = Layout.from_params(params, tmp_path)
        layout = Layout(base.root, base.artifacts, base.registry, shared_expectations, base.data)
        write_diabetes(layout.data / FILE, frame)
        return layout

    return make


def _quarantine(layout: Layout) -> dict[str, str]:
    with (layout.quarantine).open(newline="") as f:
        return {r["path"]: r["failed_expectations"] for r in csv.DictReader(f)}


def _failed(err: pytest.ExceptionInfo[DataValidationError]) -> set[str]:
    return set(err.value.report.failed_expectations())


def test_clean_table_passes_and_blanks_are_kept(layout_for: Callable[..., Layout]) -> None:
    params = make_params()
    layout = layout_for(params, diabetes_frame())
    report = validate_dataset(params, layout)
    assert report.success and report.total_rows == 442 and report.rejected_rows == 0
    # Blank bp cells are within bp's max_null_share: imputed later, not quarantined.
    accepted = pd.read_csv(layout.accepted_manifest)
    assert list(accepted.columns) == ["path"] and len(accepted) == 442


def test_few_bad_rows_are_quarantined_and_left_out_of_training(
    layout_for: Callable[..., Layout],
) -> None:
    params = make_params()
    frame, broken = with_few_bad_rows(diabetes_frame())
    layout = layout_for(params, frame)
    report = validate_dataset(params, layout)  # mostly=0.95: the run goes on
    assert report.success and report.rejected_rows == len(broken)
    quarantined = _quarantine(layout)
    assert set(quarantined) == {path_of(i) for i in broken}
    for index, expectation in broken.items():
        assert expectation in quarantined[path_of(index)].split(";")
    bmi = next(r for r in report.results if r["expectation"].endswith("(bmi__valid)"))
    assert bmi["success"] and bmi["unexpected_count"] == 3

    counts = run_preprocess(params, layout)
    assert sum(counts.values()) == 442 - len(broken)
    splits = json.loads(layout.split_index.read_text())
    used = {p for paths in splits.values() for p in paths}
    assert not used & set(quarantined) and len(used) == 442 - len(broken)


def test_the_same_rows_fail_a_strict_suite(layout_for: Callable[..., Layout]) -> None:
    params = make_params(suite="diabetes-strict", mostly=1.0)
    layout = layout_for(params, with_few_bad_rows(diabetes_frame())[0])
    with pytest.raises(DataValidationError) as err:
        validate_dataset(params, layout)
    assert _failed(err) == {
        "expect_column_values_to_be_in_set(bmi__valid)",
        "expect_column_values_to_not_be_null(bmi)",
        "expect_column_values_to_be_between(s1)",
        f"expect_column_values_to_not_be_null({TARGET})",
    }


def test_mostly_broken_table_fails(layout_for: Callable[..., Layout]) -> None:
    params = make_params()
    layout = layout_for(params, mostly_broken(diabetes_frame()))
    with pytest.raises(DataValidationError) as err:
        validate_dataset(params, layout)
    # Text in a number column is both the wrong type and a missing value.
    assert _failed(err) == {
        "expect_column_values_to_be_in_set(bmi__valid)",
        "expect_column_values_to_not_be_null(bmi)",
    }
    assert "bmi__valid" in str(err.value)
    quarantined = _quarantine(layout)
    assert len(quarantined) == sum(1 for i in range(442) if i % 5 < 2)


def _too_many_blanks(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame.loc[frame.index % 10 == 0, "bp"] = None  # 10% + the built-in 3% > 5%
    return frame


def _unknown_category(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame.loc[frame.index % 3 == 0, "age_band"] = "teen"
    return frame


def _no_target(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=[TARGET])


def _inf_target(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.astype({TARGET: object})
    frame.loc[frame.index % 4 == 0, TARGET] = "inf"
    return frame


@pytest.mark.parametrize(
    ("breaks", "expected"),
    [
        (_too_many_blanks, {"expect_column_proportion_of_non_null_values_to_be_between(bp)"}),
        (_unknown_category, {"expect_column_values_to_be_in_set(age_band)"}),
        (_no_target, {f"expect_column_values_to_not_be_null({TARGET})"}),
        (
            _inf_target,
            {
                f"expect_column_values_to_be_in_set({TARGET}__valid)",
                f"expect_column_values_to_not_be_null({TARGET})",
            },
        ),
    ],
    ids=["null-share", "category", "no-target", "inf-target"],
)
def test_bad_tables_fail_naming_the_expectation(
    layout_for: Callable[..., Layout],
    breaks: Callable[[pd.DataFrame], pd.DataFrame],
    expected: set[str],
) -> None:
    params = make_params()
    layout = layout_for(params, breaks(diabetes_frame()))
    with pytest.raises(DataValidationError) as err:
        validate_dataset(params, layout)
    assert _failed(err) == expected
