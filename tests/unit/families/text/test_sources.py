"""Reading text examples: tables in every configured shape, text folders, bad bytes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from flywheel.core.config import Params, parse_params
from flywheel.datasets.tables import TableError
from flywheel.families.text.sources import TEXT_COLUMNS, join_title, read_text_examples, text_hash


def params(**data: Any) -> Params:
    return parse_params(
        {"task": "text_classification", "data": data, "validate": {"labels": ["1", "2"]}}
    )


def test_headerless_quoted_csv_by_position_joins_title(tmp_path: Path) -> None:
    f = tmp_path / "news.csv"
    f.write_text(
        '"1","Title, with comma","Body with ""quotes"", and a comma"\n"2","Second","Another body"\n'
    )
    p = params(kind="table", header=False, label_column=0, title_column=1, text_column=2)
    frame = read_text_examples(p, f)
    assert tuple(frame.columns) == TEXT_COLUMNS
    assert frame["path"].tolist() == ["news.csv:1", "news.csv:2"]
    assert frame["label"].tolist() == ["1", "2"]
    assert frame["text"][0] == 'Title, with comma\nBody with "quotes", and a comma'
    assert frame["valid_encoding"].all()
    assert frame["class_count"].tolist() == [1, 1]


def test_header_by_name_and_tsv_without_quoting(tmp_path: Path) -> None:
    f = tmp_path / "data.tsv"
    f.write_text('sentence\tlabel\nIt is "great\t1\nbad "movie" really\t2\n')
    p = params(kind="table", quoting="none", text_column="sentence", label_column="label")
    frame = read_text_examples(p, f)
    assert frame["text"].tolist() == ['It is "great', 'bad "movie" really']
    assert frame["n_chars"].tolist() == [12, 18]


def test_missing_cells_are_findings_not_errors(tmp_path: Path) -> None:
    f = tmp_path / "t.csv"
    f.write_text("label,text\n1,\n,orphan text\n2,   \n")
    frame = read_text_examples(params(kind="table"), f)
    assert frame["text"][0] is None and frame["text_sha256"][0] is None
    assert frame["label"][1] is None
    assert frame["n_chars"].tolist() == [0, 11, 0]


def test_invalid_utf8_in_a_table_is_recorded(tmp_path: Path) -> None:
    f = tmp_path / "t.csv"
    f.write_bytes(b"label,text\n1,caf\xe9 au lait\n2,fine\n")
    frame = read_text_examples(params(kind="table"), f)
    assert frame["valid_encoding"].tolist() == [False, True]
    assert "\ufffd" in frame["text"][0]


def test_parquet_integer_labels_become_strings(tmp_path: Path) -> None:
    f = tmp_path / "t.parquet"
    pd.DataFrame({"text": ["a b", "c d", "e f"], "label": [1.0, 2.0, None]}).to_parquet(f)
    frame = read_text_examples(params(kind="table"), f)
    assert frame["label"].tolist() == ["1", "2", None]


def test_unknown_column_is_a_configuration_error(tmp_path: Path) -> None:
    f = tmp_path / "t.csv"
    f.write_text("label,body\n1,x\n")
    with pytest.raises(TableError, match=r"data\.text_column"):
        read_text_examples(params(kind="table"), f)


def test_text_folder_with_corrupt_file_and_stray_file(tmp_path: Path) -> None:
    (tmp_path / "1").mkdir()
    (tmp_path / "2").mkdir()
    (tmp_path / "1" / "a.txt").write_text("\ufeffhello world", encoding="utf-8")
    (tmp_path / "2" / "bad.txt").write_bytes(b"caf\xe9 \xff\xfe broken")
    (tmp_path / "2" / "notes.md").write_text("not a text example")
    (tmp_path / "stray.txt").write_text("no label folder")
    frame = read_text_examples(params(kind="text_folder"), tmp_path).set_index("path")
    assert sorted(frame.index) == ["1/a.txt", "2/bad.txt", "stray.txt"]
    assert frame.loc["1/a.txt", "text"] == "hello world"
    assert not frame.loc["2/bad.txt", "valid_encoding"]
    assert frame.loc["stray.txt", "label"] == ""


def test_join_title_and_hash() -> None:
    assert join_title("T", "body") == "T\nbody"
    assert join_title(None, "body") == "body"
    assert join_title("T", None) == "T"
    assert join_title(None, None) is None
    assert join_title(" ", "") == ""
    assert text_hash("a  b\n c") == text_hash("a b c") != text_hash("a b c d")


def test_unknown_encoding_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "1").mkdir()
    (tmp_path / "1" / "a.txt").write_text("x")
    with pytest.raises(TableError, match="unknown encoding"):
        read_text_examples(params(kind="text_folder", encoding="no-such-codec"), tmp_path)
