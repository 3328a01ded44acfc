"""The text-classification suite over a headerless, quoted news CSV and a text folder.

Each broken variant of a good corpus must fail naming the expectation that catches it and
quarantine exactly the offending rows; nothing may crash on bad bytes.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from tests.text_corpus import NEWS_PARAMS, news_corpus, write_news_csv, write_news_folder

from flywheel.core.config import Params, parse_params
from flywheel.core.errors import DataValidationError
from flywheel.core.layout import Layout
from flywheel.stages.validate import save_suite, validate_dataset

LABEL_SET = "expect_column_distinct_values_to_equal_set(label)"
LABEL_IN_SET = "expect_column_values_to_be_in_set(label)"
LABEL_NOT_NULL = "expect_column_values_to_not_be_null(label)"
TEXT_NOT_NULL = "expect_column_values_to_not_be_null(text)"
ENCODING = "expect_column_values_to_be_in_set(valid_encoding)"
LENGTH = "expect_column_values_to_be_between(n_chars)"
CLASS_COUNT = "expect_column_values_to_be_between(class_count)"
UNIQUE_TEXT = "expect_column_values_to_be_unique(text_sha256)"

ROWS = news_corpus(6, seed=1)  # 24 rows, 6 per label


def table_params(**validate: object) -> Params:
    raw = {**NEWS_PARAMS, "data": {**NEWS_PARAMS["data"], "path": "news.csv"}}
    raw["validate"] = {**NEWS_PARAMS["validate"], "max_chars": 2000, **validate}
    return parse_params(raw)


@pytest.fixture(scope="module")
def params() -> Params:
    return table_params(min_rows_per_class=3)


N = len(ROWS)
# Bad rows appended after the good ones, in this order: (raw CSV line, what must catch it).
BROKEN: dict[str, tuple[bytes, set[str]]] = {
    "non-utf8": (b'"1","Caf\xe9 news","Broken \xff bytes in this one"', {ENCODING}),
    "empty-text": (b'"2","","  "', {LENGTH}),
    "missing-text": (b'"3",,', {TEXT_NOT_NULL, LENGTH}),
    "missing-label": (b',"A title","A body"', {LABEL_NOT_NULL}),
    "unknown-label": (b'"9","Odd","A label nobody asked for"', {LABEL_IN_SET, CLASS_COUNT}),
    "too-long": (b'"1","Long","' + b"word " * 500 + b'"', {LENGTH}),
    # The same text (up to whitespace) under another label: it could sit in two splits,
    # and it contradicts the original, which is quarantined with it.
    "duplicate": (f'"4","{ROWS[0][1]}","{ROWS[0][2]}  "'.encode(), {UNIQUE_TEXT}),
}


def test_good_corpus_passes(params: Params, layout: Layout) -> None:
    write_news_csv(layout.data, ROWS)
    report = validate_dataset(params, layout)
    assert report.success and report.rejected_rows == 0 and report.total_rows == N
    with (layout.accepted_manifest).open(newline="") as fh:
        accepted = list(csv.DictReader(fh))
    assert list(accepted[0]) == ["path", "text", "label", "text_sha256"]
    first = next(r for r in accepted if r["path"] == "news.csv:1")
    assert first["text"] == f"{ROWS[0][1]}\n{ROWS[0][2]}"


def test_broken_rows_fail_naming_the_expectation_and_are_quarantined(
    params: Params, layout: Layout
) -> None:
    write_news_csv(layout.data, ROWS)
    with layout.data.open("ab") as fh:
        fh.write(b"".join(line + b"\n" for line, _ in BROKEN.values()))
    with pytest.raises(DataValidationError) as caught:
        validate_dataset(params, layout)
    must_fail = set().union(*(names for _, names in BROKEN.values())) | {LABEL_SET}
    assert must_fail <= set(caught.value.report.failed_expectations())
    for name in must_fail:
        assert name in str(caught.value)
    with (layout.quarantine).open(newline="") as fh:
        quarantined = {
            r["path"]: set(r["failed_expectations"].split(";")) for r in csv.DictReader(fh)
        }
    expected = {f"news.csv:{N + 1 + i}": names for i, (_, names) in enumerate(BROKEN.values())}
    expected["news.csv:1"] = {UNIQUE_TEXT}
    assert set(quarantined) == set(expected)
    for path, names in expected.items():
        assert names <= quarantined[path], path
    with (layout.accepted_manifest).open(newline="") as fh:
        assert len(list(csv.DictReader(fh))) == N - 1


def test_mostly_lets_the_run_pass_but_still_quarantines(
    tmp_path: Path, shared_expectations: Path
) -> None:
    lenient = table_params(min_rows_per_class=3, mostly=0.9, suite="news-lenient")
    base = Layout.from_params(lenient, tmp_path)
    save_suite(lenient, base)
    write_news_csv(base.data, ROWS)
    with base.data.open("ab") as fh:
        fh.write(BROKEN["non-utf8"][0] + b"\n")
    report = validate_dataset(lenient, base)
    assert report.success and report.rejected_rows == 1


def test_text_folder_with_a_corrupt_file(tmp_path: Path) -> None:
    raw = {**NEWS_PARAMS, "data": {"kind": "text_folder", "path": "news"}}
    raw["validate"] = {**NEWS_PARAMS["validate"], "suite": "news-folder"}
    folder_params = parse_params(raw)
    layout = Layout.from_params(folder_params, tmp_path)
    save_suite(folder_params, layout)
    write_news_folder(layout.data, ROWS)
    (layout.data / "2" / "corrupt.txt").write_bytes(b"\xff\xfe\x00garbage \xe9 bytes")
    with pytest.raises(DataValidationError, match=r"in_set\(valid_encoding\)"):
        validate_dataset(folder_params, layout)
    quarantine = (layout.quarantine).read_text()
    assert "2/corrupt.txt" in quarantine and quarantine.count("\n") == 2
