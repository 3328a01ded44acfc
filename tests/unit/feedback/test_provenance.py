"""Feedback data is known by its file names: the card and the run summary count it."""

from __future__ import annotations

import json
from pathlib import Path

from flywheel.core.layout import Layout
from flywheel.feedback.materialise import is_feedback_path
from flywheel.feedback.provenance import feedback_counts


def test_feedback_paths_of_every_kind_are_recognised() -> None:
    assert is_feedback_path("3/feedback-0a1b.png")
    assert is_feedback_path("feedback-20261201T000000-0a1b2c3d.csv:7")
    assert not is_feedback_path("3/0001.png")
    assert not is_feedback_path("train.csv:12")
    assert not is_feedback_path("feedback/3/0001.png")  # a folder name is not the marker


def test_counts_come_from_the_accepted_manifest_and_the_train_split(tmp_path: Path) -> None:
    layout = Layout(tmp_path, tmp_path / "a", tmp_path / "r", tmp_path / "e", tmp_path / "d")
    layout.validation_dir.mkdir(parents=True)
    layout.accepted_manifest.write_text(
        "path,label\n1/a.png,1\n1/feedback-x.png,1\n2/feedback-y.png,2\n"
    )
    assert feedback_counts(layout) == {"feedback_records": 2, "feedback_train_rows": 0}
    layout.preprocessed_dir.mkdir(parents=True)
    layout.split_index.write_text(
        json.dumps({"train": ["1/a.png", "1/feedback-x.png"], "test": ["2/feedback-y.png"]})
    )
    assert feedback_counts(layout) == {"feedback_records": 2, "feedback_train_rows": 1}
