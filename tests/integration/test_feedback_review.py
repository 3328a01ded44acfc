"""`flywheel feedback accept` on real projects (git + DVC, the stored GX suite), one per
data kind: records the server's own store wrote are checked together with the current
data; what passes becomes new data files and a new DVC version, what fails stays in the
inbox with the failed expectation named."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from tests.integration.conftest import FAST_PARAMS, build_project
from tests.tabular_data import diabetes_frame, diabetes_params, write_diabetes
from tests.text_corpus import NEWS_PARAMS, news_corpus, write_news_csv

from flywheel.datasets.hashing import data_hash
from flywheel.datasets.png import encode_png
from flywheel.families.base import StoredInstance, canonical_json
from flywheel.serving.feedback import OBSERVED, FeedbackStore

pytestmark = [pytest.mark.slow]


def cli(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flywheel.cli", *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
    )


def accept_all(project: Path) -> dict[str, Any]:
    done = cli(project, "feedback", "accept", "--all", "--json")
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def store(project: Path, label: Any, data: bytes, suffix: str, folder: str | None = None) -> str:
    meta = {"model_version": "v0001", "sender": "s1"}
    inbox = FeedbackStore(project / "feedback")
    return inbox.save(label, StoredInstance(data, suffix), meta, folder_name=folder)


def assert_new_version(project: Path, data: Path, outcome: dict[str, Any]) -> None:
    dvc_file = Path(f"{data}.dvc")
    recorded = yaml.safe_load(dvc_file.read_text())["outs"][0]["md5"]
    assert outcome["data_hash"] == recorded == data_hash(data)


def test_image_feedback_becomes_new_files_and_a_bad_image_stays(tmp_path: Path) -> None:
    project = build_project(tmp_path / "p", FAST_PARAMS)
    before = {p: p.read_bytes() for p in (project / "data").rglob("*.png")}
    pixels = np.random.default_rng(0).integers(0, 17, (8, 8), dtype=np.uint8)
    good = store(project, "3", encode_png(pixels), ".png")
    bad = store(project, "5", b"not an image at all", ".png")

    outcome = accept_all(project)

    assert outcome["accepted"] == [good]
    assert outcome["failed"][bad], outcome
    assert (project / "data" / "3" / f"feedback-{good}.png").read_bytes() == encode_png(pixels)
    assert all(p.read_bytes() == b for p, b in before.items())  # nothing existing edited
    assert_new_version(project, project / "data", outcome)
    listed = json.loads(cli(project, "feedback", "list", "--json").stdout)
    assert [(r["id"], r["status"]) for r in listed] == [(bad, "failed")]
    assert listed[0]["failed"] == outcome["failed"][bad]
    rejected = cli(project, "feedback", "reject", bad, "--reason", "not a digit")
    assert rejected.returncode == 0 and not json.loads(
        cli(project, "feedback", "list", "--json").stdout
    )
    unknown = cli(project, "feedback", "accept", "0" * 32)
    assert unknown.returncode != 0 and "no feedback record" in unknown.stderr
    assert "Traceback" not in unknown.stderr


def test_tabular_feedback_is_a_new_table_part_and_out_of_range_rows_stay(tmp_path: Path) -> None:
    raw = diabetes_params(data={"path": "table"}, validate={"suite": "diabetes-fb"})
    project = build_project(tmp_path / "p", {**FAST_PARAMS, **raw})
    frame = diabetes_frame()
    write_diabetes(project / "table" / "diabetes.csv", frame)
    row = {k: v for k, v in frame.iloc[0].to_dict().items() if k != "progression"}
    row = {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}
    good = store(project, 151.0, canonical_json(row), ".instance.json", OBSERVED)
    bad = store(project, 99.0, canonical_json({**row, "bmi": 999.0}), ".instance.json", OBSERVED)

    outcome = accept_all(project)

    assert outcome["accepted"] == [good]
    assert any("between" in name for name in outcome["failed"][bad]), outcome
    (part,) = (project / "table").glob("feedback-*.csv")
    assert "151.0" in part.read_text() and "999" not in part.read_text()
    assert_new_version(project, project / "table", outcome)


def test_text_feedback_joins_a_headerless_table_and_a_duplicate_is_named(tmp_path: Path) -> None:
    raw = {
        **NEWS_PARAMS,
        "data": {**NEWS_PARAMS["data"], "path": "news"},
        "validate": {**NEWS_PARAMS["validate"], "suite": "news-fb"},
    }
    project = build_project(tmp_path / "p", {**FAST_PARAMS, **raw})
    rows = news_corpus(60, seed=3)  # validate.min_rows_per_class is 50
    write_news_csv(project / "news" / "train.csv", rows)
    label, title, body = rows[0]
    fresh = {"title": "Markets story 999", "text": "Shares rallied as the central bank held rates."}
    good = store(project, label, canonical_json(fresh), ".instance.json")
    copy = store(project, label, canonical_json({"title": title, "text": body}), ".instance.json")

    outcome = accept_all(project)

    assert outcome["accepted"] == [good], outcome
    assert any("unique" in name for name in outcome["failed"][copy]), outcome
    (part,) = (project / "news").glob("feedback-*.csv")
    assert "central bank held rates" in part.read_text()
    assert_new_version(project, project / "news", outcome)
