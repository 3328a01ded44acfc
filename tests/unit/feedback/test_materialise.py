"""Feedback as a new table part: the part reads back, through the project's own table
reader, as the rows the records hold."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.sentiment_data import SENTIMENT_PARAMS

from flywheel.core.config import parse_params
from flywheel.datasets.tables import read_one
from flywheel.families.base import StoredInstance, canonical_json
from flywheel.feedback.inbox import Inbox
from flywheel.feedback.materialise import table_part
from flywheel.serving.feedback import FeedbackStore

# The amazon/yelp layout: headerless, tab-separated, no quoting (stray quote marks are text).
UNQUOTED = SENTIMENT_PARAMS["data"]


@pytest.mark.parametrize("quoting", ["none", "minimal"])
def test_a_text_with_quote_marks_reads_back_as_sent(tmp_path: Path, quoting: str) -> None:
    params = parse_params(
        {
            "task": "sentiment",
            "data": {**UNQUOTED, "quoting": quoting},
            "validate": {"labels": ["0", "1"]},
        }
    )
    texts = ['I thought the pizza was "superb".', 'A "so-called" upgrade:\tuseless.']
    store = FeedbackStore(tmp_path / "inbox")
    for text, label in zip(texts, ["1", "0"], strict=True):
        store.save(label, StoredInstance(canonical_json(text), ".instance.json"), {})
    records = sorted(Inbox(tmp_path / "inbox").records(), key=lambda r: str(r.meta["label"]))
    data = tmp_path / "reviews"
    data.mkdir()
    (data / "a_labelled.txt").write_text("fine\t1\n")

    name, body = table_part(params, data, records)
    (data / name).write_bytes(body)
    frame = read_one(data / name, params.data)

    sent = {"0": texts[1], "1": texts[0]}
    if quoting == "none":  # a tab cannot be text in an unquoted TSV: it becomes a space
        sent["0"] = sent["0"].replace("\t", " ")
    assert frame.shape == (2, 2)
    assert {str(row[1]): row[0] for row in frame.itertuples(index=False)} == sent
