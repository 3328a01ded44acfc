"""The validation tables for the Prefect run page, built from a real failed validation: an
image folder with an unknown label folder, an unreadable file and a copy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from flywheel.core.config import Params, parse_params
from flywheel.core.errors import DataValidationError
from flywheel.core.layout import Layout
from flywheel.datasets.png import encode_png
from flywheel.stages.validate import ValidationReport, validate_dataset
from flywheel.stages.validate.findings import (
    expectation_rows,
    quarantine_markdown,
    quarantined,
)


@pytest.fixture(scope="module")
def params() -> Params:
    return parse_params({"validate": {"suite": "findings", "labels": ["a", "b"], "mostly": 0.5}})


@pytest.fixture
def failed(layout: Layout, params: Params) -> ValidationReport:
    rng = np.random.default_rng(0)
    for label in ("a", "b", "c"):
        (layout.data / label).mkdir(parents=True)
        for i in range(4):
            pixels = rng.integers(0, 256, (8, 8), dtype=np.uint8)
            (layout.data / label / f"{i}.png").write_bytes(encode_png(pixels))
    (layout.data / "a" / "broken.png").write_bytes(b"not a png")
    (layout.data / "b" / "copy.png").write_bytes((layout.data / "a" / "0.png").read_bytes())
    with pytest.raises(DataValidationError):
        validate_dataset(params, layout)
    return ValidationReport.load(layout.validation_report)


def test_every_expectation_is_a_row_with_its_result_and_examples(
    failed: ValidationReport, layout: Layout
) -> None:
    rows = expectation_rows(failed, quarantined(layout.quarantine))
    assert [r["expectation"] for r in rows] == [r["expectation"] for r in failed.results]
    by_name = {r["expectation"]: r for r in rows}
    label_set = by_name["expect_column_distinct_values_to_equal_set(label)"]
    assert label_set["result"] == "FAILED" and "c" in label_set["observed"]
    readable = by_name["expect_column_values_to_be_in_set(readable)"]
    assert readable["result"] == "passed"  # mostly 0.5: one bad file is let through...
    assert "a/broken.png (readable=False)" in readable["examples"]  # ...and still shown
    unique = by_name["expect_column_values_to_be_unique(sha256)"]
    assert "a/0.png" in unique["examples"] and "b/copy.png" in unique["examples"]
    assert by_name["expect_table_row_count_to_be_between"]["observed"] == "14"


def test_quarantine_summary_names_the_rows_and_why(
    failed: ValidationReport, layout: Layout
) -> None:
    text = quarantine_markdown(failed, quarantined(layout.quarantine))
    assert text.startswith("# Validation of suite `findings`")
    assert "**Rejected**" in text and "expect_column_distinct_values_to_equal_set(label)" in text
    assert f"{failed.rejected_rows} of 14 rows quarantined" in text
    assert "| `a/broken.png` |" in text


def test_an_accepted_dataset_says_so(tmp_path: Path) -> None:
    report = ValidationReport("s", True, [], 3, 0, str(tmp_path / "q.csv"))
    text = quarantine_markdown(report, quarantined(tmp_path / "q.csv"))
    assert "**Accepted**" in text and "No row quarantined out of 3." in text
