"""The validate stage end to end: a Great Expectations suite over small image folders.

Scaffolding a GX project and storing the suite is the slow part, so the tests share one
project (module scope) and each brings only its own data and artifacts folders.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.unit.stages.validate.image_folders import (
    BROKEN,
    LABEL_SET,
    LABELS,
    PER_CLASS,
    _missing_class,
    _unknown_label,
    write_dataset,
)

from flywheel.core.config import Params, parse_params
from flywheel.core.errors import ConfigError, DataValidationError
from flywheel.core.layout import Layout
from flywheel.stages.validate import ValidationReport, build_suite, save_suite, validate_dataset
from flywheel.stages.validate.suite import open_context, suite_path


@pytest.fixture(scope="module")
def params() -> Params:
    return parse_params({"validate": {"labels": list(LABELS), "min_rows_per_class": 2}})


@pytest.fixture
def make_layout(tmp_path: Path, params: Params) -> Callable[..., Layout]:
    """A workspace under tmp_path whose GX project is ``expectations`` (default: its own)."""

    def make(expectations: Path | None = None) -> Layout:
        layout = Layout.from_params(params, tmp_path)
        if expectations is None:
            return layout
        return Layout(
            root=layout.root,
            artifacts=layout.artifacts,
            registry=layout.registry,
            expectations=expectations,
            data=layout.data,
        )

    return make


@pytest.fixture
def good_layout(make_layout: Callable[..., Layout], shared_expectations: Path) -> Layout:
    layout = make_layout(shared_expectations)
    write_dataset(layout.data, dict.fromkeys(LABELS, PER_CLASS))
    return layout


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_good_dataset_passes_with_deterministic_outputs(
    params: Params, good_layout: Layout
) -> None:
    first = validate_dataset(params, good_layout)
    out = good_layout.validation_dir
    manifest = (out / "manifest.csv").read_bytes()
    first_json = json.loads((out / "report.json").read_text())

    second = validate_dataset(params, good_layout)

    assert first.success and second.success
    assert first.failed_expectations() == []
    assert (out / "manifest.csv").read_bytes() == manifest
    rows = _rows(out / "manifest.csv")
    assert list(rows[0]) == ["path", "label", "sha256"]
    assert [r["path"] for r in rows] == sorted(f"{lab}/{i}.png" for lab in LABELS for i in range(3))
    quarantine = (out / "quarantine.csv").read_text().splitlines()
    assert len(quarantine) == 1 and quarantine[0].endswith(",failed_expectations")
    assert (first.total_rows, first.rejected_rows) == (len(LABELS) * PER_CLASS, 0)
    assert first.data_docs_path is not None and Path(first.data_docs_path).is_file()
    # Only the time of validation (and the Data Docs page named after it) may differ
    # between two reports of the same data.
    second_json = json.loads((out / "report.json").read_text())
    for key in ("validated_at", "data_docs_page"):
        assert first_json.pop(key) != "" and second_json.pop(key) != ""
    assert first_json == second_json
    assert ValidationReport.load(out / "report.json") == second


@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_dataset_fails_and_quarantines(
    params: Params, good_layout: Layout, case: str
) -> None:
    breaker, must_fail, quarantined = BROKEN[case]
    breaker(good_layout.data)

    with pytest.raises(DataValidationError) as caught:
        validate_dataset(params, good_layout)

    report = caught.value.report
    assert must_fail <= set(report.failed_expectations())
    for name in must_fail:
        assert name in str(caught.value)
    out = good_layout.validation_dir
    on_disk = ValidationReport.load(out / "report.json")
    assert must_fail <= set(on_disk.failed_expectations()) and not on_disk.success
    rejected = _rows(out / "quarantine.csv")
    assert {r["path"] for r in rejected} == quarantined
    assert report.rejected_rows == len(quarantined)
    for row in rejected:
        assert set(row["failed_expectations"].split(";")) & must_fail
    accepted = {r["path"] for r in _rows(out / "manifest.csv")}
    assert not accepted & quarantined


def test_failure_details_name_the_culprits(params: Params, good_layout: Layout) -> None:
    _missing_class(good_layout.data)
    _unknown_label(good_layout.data)
    with pytest.raises(DataValidationError) as caught:
        validate_dataset(params, good_layout)
    (label_set,) = [r for r in caught.value.report.results if r["expectation"] == LABEL_SET]
    assert label_set["unexpected_sample"] == ["zebra"]
    assert label_set["missing_sample"] == ["c"]


def test_expectation_that_raises_counts_as_failed(
    params: Params, make_layout: Callable[..., Layout], tmp_path: Path
) -> None:
    import great_expectations as gx
    import great_expectations.expectations as gxe

    layout = make_layout(tmp_path / "own-expectations")
    write_dataset(layout.data, dict.fromkeys(LABELS, PER_CLASS))
    broken = gxe.ExpectColumnValuesToNotBeNull(column="no_such_column")
    suite = build_suite(params)
    open_context(layout).suites.add(
        gx.ExpectationSuite(name=suite.name, expectations=[*suite.expectations, broken])
    )

    with pytest.raises(
        DataValidationError, match=r"expect_column_values_to_not_be_null\(no_such_column\)"
    ) as caught:
        validate_dataset(params, layout)

    (failed,) = [r for r in caught.value.report.results if not r["success"]]
    assert "no_such_column" in failed["exception"]


def test_missing_data_folder_is_named(params: Params, make_layout: Callable[..., Layout]) -> None:
    layout = make_layout()
    with pytest.raises(FileNotFoundError, match=str(layout.data)):
        validate_dataset(params, layout)
    assert not layout.validation_dir.exists()


def test_missing_suite_says_how_to_create_it(
    params: Params, make_layout: Callable[..., Layout]
) -> None:
    layout = make_layout()
    write_dataset(layout.data, dict.fromkeys(LABELS, PER_CLASS))
    with pytest.raises(ConfigError, match=r"'default'.*flywheel expectations init"):
        validate_dataset(params, layout)


def test_suite_json_alone_is_enough(
    params: Params, good_layout: Layout, make_layout: Callable[..., Layout], tmp_path: Path
) -> None:
    """A checkout holds only the committed suite; the rest of the GX project is recreated."""
    fresh = make_layout(tmp_path / "checkout")
    stored = suite_path(good_layout, params.validate_.suite)
    target = suite_path(fresh, params.validate_.suite)
    target.parent.mkdir(parents=True)
    shutil.copyfile(stored, target)

    assert validate_dataset(params, fresh).success
    assert (fresh.expectations / "gx" / "great_expectations.yml").is_file()


def test_save_suite_is_stable_and_replaces(tmp_path: Path, params: Params) -> None:
    layout = Layout.from_params(params, tmp_path)
    path = save_suite(params, layout)
    first = path.read_bytes()
    assert save_suite(params, layout).read_bytes() == first

    fewer = parse_params({"validate": {"labels": ["a", "b"], "min_rows_per_class": 2}})
    stored = json.loads(save_suite(fewer, layout).read_text())
    (label_set,) = [
        e
        for e in stored["expectations"]
        if e["type"] == "expect_column_distinct_values_to_equal_set"
    ]
    assert label_set["kwargs"]["value_set"] == ["a", "b"]
    assert len(stored["expectations"]) == len(build_suite(fewer).expectations)


def test_build_suite_covers_every_check_and_mostly(params: Params) -> None:
    suite = build_suite(params, mostly=0.9)
    assert suite.name == params.validate_.suite
    columns = {e.configuration.kwargs.get("column") for e in suite.expectations}
    assert columns == {
        None,
        "label",
        "readable",
        "mode",
        "format",
        "width",
        "height",
        "class_count",
        "sha256",
    }
    row_level = [e for e in suite.expectations if "mostly" in e.configuration.kwargs]
    assert len(row_level) == 8 and all(e.configuration.kwargs["mostly"] == 0.9 for e in row_level)


def test_digits_in_a_fresh_process_give_identical_manifest(tmp_path: Path) -> None:
    """The real default dataset, validated here and in a new interpreter: same bytes."""
    from flywheel.datasets.digits import DIGITS_LABELS, materialise_digits

    materialise_digits(tmp_path / "data")
    raw = {"validate": {"labels": list(DIGITS_LABELS), "min_rows_per_class": 150}}
    params = parse_params(raw)
    layout = Layout.from_params(params, tmp_path)
    save_suite(params, layout)
    report = validate_dataset(params, layout)
    assert report.success and report.total_rows == 1797
    manifest = (layout.accepted_manifest).read_bytes()

    script = textwrap.dedent(
        f"""
        from flywheel.core.config import parse_params
        from flywheel.core.layout import Layout
        from flywheel.stages.validate import validate_dataset
        params = parse_params({raw!r})
        validate_dataset(params, Layout.from_params(params, {str(tmp_path)!r}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "Calculating Metrics" not in done.stderr  # tqdm bars are off
    assert (layout.accepted_manifest).read_bytes() == manifest
