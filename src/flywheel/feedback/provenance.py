"""How much of a run's data came from production feedback (for the card and the summary).

Feedback data files carry the ``feedback-`` prefix (:mod:`.materialise`), so the accepted
manifest and the split index say it without any other record.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from flywheel.core.layout import Layout
from flywheel.feedback.materialise import is_feedback_path


def _manifest_paths(path: Path) -> list[str]:
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as fh:
        return [str(row.get("path", "")) for row in csv.DictReader(fh)]


def feedback_counts(layout: Layout) -> dict[str, int]:
    """``feedback_records`` in the validated data, ``feedback_train_rows`` among them in
    the training split (0 and 0 when the files are not there)."""
    accepted = sum(map(is_feedback_path, _manifest_paths(layout.accepted_manifest)))
    train = 0
    if layout.split_index.is_file():
        splits = json.loads(layout.split_index.read_text())
        train = sum(map(is_feedback_path, (str(p) for p in splits.get("train", []))))
    return {"feedback_records": accepted, "feedback_train_rows": train}
