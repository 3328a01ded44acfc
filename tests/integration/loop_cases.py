"""What the feedback-loop test needs per family: the project's params and data, and the
feedback a user would send (by prediction id) once the first model is served.

Every case has good feedback (all of it accepted), one record the server keeps but the
dataset's suite refuses at ``feedback accept`` (with the expectation it breaks), one label
the server refuses at once, and one instance it cannot answer at all (so there is no
prediction to give feedback on). Data and training are as small as still trains a model
the gate can pass.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tests.sentiment_data import SENTIMENT_PARAMS, sentences, write_labelled
from tests.tabular_data import TARGET, diabetes_frame, diabetes_params, write_diabetes
from tests.text_corpus import NEWS_PARAMS, news_corpus, write_news_csv

from flywheel.datasets.png import encode_png

# The loop is under test here, not the gate's margins: a busy CI machine's latency noise
# must not decide whether the second model is promoted.
LOOP_GATE = {"tolerance": 0.05, "max_latency_ratio": 5.0, "max_size_ratio": 5.0}


@dataclass
class Feedback:
    good: list[tuple[Any, Any]]  # (instance, label): predicted, then labelled by id
    bad: tuple[Any, Any]  # stored by the server, refused by the suite at accept
    bad_expectation: str  # the expectation that refusal names
    refused_label: Any  # 400 at once, naming the valid labels or range
    refused_instance: Any  # 400 at /v1/predict: nothing to label
    refused_error: str = field(default="")  # what that 400 says


@dataclass(frozen=True)
class LoopCase:
    sections: dict[str, Any]
    write_data: Callable[[Path], None]
    feedback: Callable[[Path], Feedback]


def _b64(pixels: np.ndarray) -> dict[str, str]:
    return {"b64": base64.b64encode(encode_png(pixels)).decode()}


def _image_feedback(project: Path) -> Feedback:
    good = []
    for label in ("0", "3", "7", "9"):
        source = sorted((project / "data" / label).glob("*.png"))[0]
        with Image.open(source) as image:
            pixels = np.array(image.convert("L"))
        pixels[0, 0] = 255 - pixels[0, 0]  # a new photo of the same digit, not a copy
        good.append((_b64(pixels), label))
    big = np.zeros((12, 12), dtype=np.uint8)
    return Feedback(
        good,
        (_b64(big), "1"),
        "expect_column_values_to_be_between(width)",
        "ten",
        {"b64": base64.b64encode(b"not an image at all").decode()},
        "image",
    )


def _news_feedback(project: Path) -> Feedback:
    rows = news_corpus(1, seed=99)
    good = [({"title": f"{t} (reader)", "text": b}, label) for label, t, b in rows]
    return Feedback(
        good,
        ("Rates up", rows[0][0]),  # shorter than validate.min_chars
        "expect_column_values_to_be_between(n_chars)",
        "5",
        "",
        "text is empty",
    )


def _reviews_feedback(project: Path) -> Feedback:
    known = {text for text, _ in sentences(40, seed=11)}
    fresh = [(t, label) for t, label in sentences(60, seed=5) if t not in known][:4]
    copy = sentences(40, seed=11)[0]
    return Feedback(
        fresh,
        copy,  # already in the data: the suite's uniqueness check
        "expect_column_values_to_be_unique(text_sha256)",
        "2",
        "   ",
        "text is empty",
    )


def _write_reviews(project: Path) -> None:
    rows = sentences(40, seed=11)
    write_labelled(project / "reviews" / "amazon_labelled.txt", rows[:40])
    write_labelled(project / "reviews" / "yelp_labelled.txt", rows[40:])


def _table_rows(frame: Any) -> list[dict[str, Any]]:
    return [{k: (None if v != v else v) for k, v in r.items()} for r in frame.to_dict("records")]


def _tabular_feedback(project: Path) -> Feedback:
    # New patients (perturbed rows), their observed progression sent back by prediction id.
    fresh = diabetes_frame().iloc[:6].copy()
    fresh["s1"] = fresh["s1"] + 0.5
    rows = _table_rows(fresh)
    features = [({k: v for k, v in r.items() if k != TARGET}, r[TARGET]) for r in rows]
    odd = {**features[5][0], "bmi": 999.0}  # outside validate.columns.bmi
    return Feedback(
        features[:5],
        (odd, features[5][1]),
        "expect_column_values_to_be_between(bmi)",
        1_000.0,  # outside validate.columns.progression
        {**features[0][0], "bmi": "n/a"},
        "bmi",
    )


_TEXT_SECTIONS = {
    "task": NEWS_PARAMS["task"],
    "data": {**NEWS_PARAMS["data"], "path": "news"},
    "text": NEWS_PARAMS["text"],
    "transformer": {"max_len": 64, "freeze_layers": 0},  # a preprocess param of every task
    "validate": {**NEWS_PARAMS["validate"], "suite": "news-loop", "min_rows_per_class": 20},
    "model": NEWS_PARAMS["model"],
    "train": {"max_epochs": 8, "patience": 8, "lr": 0.01, "batch_size": 16},
    "gate": {"min_accuracy": 0.7, **LOOP_GATE},
}
_SENTIMENT_SECTIONS = {
    "task": SENTIMENT_PARAMS["task"],
    "data": {**SENTIMENT_PARAMS["data"], "path": "reviews"},
    "transformer": SENTIMENT_PARAMS["transformer"],
    "text": {"max_len": 128},  # unused by this task; dvc.yaml lists it for preprocess
    "validate": {**SENTIMENT_PARAMS["validate"], "suite": "reviews-loop"},
    "model": SENTIMENT_PARAMS["model"],
    "train": SENTIMENT_PARAMS["train"],
    "evaluate": {"intra_op_threads": 1, "throughput_batch": 8},
    "gate": {**SENTIMENT_PARAMS["gate"], **LOOP_GATE},
}

CASES: dict[str, LoopCase] = {
    "tabular": LoopCase(
        diabetes_params(
            data={"path": "table"},
            validate={"suite": "diabetes-loop"},
            train={"max_epochs": 10, "patience": 5},
            gate=LOOP_GATE,
        ),
        lambda p: write_diabetes(p / "table" / "diabetes.csv"),
        _tabular_feedback,
    ),
    # The project's own dataset (8x8 digits), which the project fixture writes.
    "image": LoopCase(
        {"gate": {"min_accuracy": 0.8, **LOOP_GATE}}, lambda p: None, _image_feedback
    ),
    "text": LoopCase(
        _TEXT_SECTIONS,
        lambda p: write_news_csv(p / "news" / "train.csv", news_corpus(40, seed=4)),
        _news_feedback,
    ),
    "sentiment": LoopCase(_SENTIMENT_SECTIONS, _write_reviews, _reviews_feedback),
}
