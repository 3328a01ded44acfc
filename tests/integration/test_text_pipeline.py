"""The real flow for text classification in a temporary DVC repository, to a served model.

A headerless, quoted news CSV (the AG news layout) goes through validate -> ... -> deploy;
the deployed model then answers raw text, with or without a title, through the same
``Predictor`` the server uses, and refuses a malformed instance by name.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.text_corpus import NEWS_PARAMS, news_corpus, write_news_csv

from flywheel.core.errors import InputError
from flywheel.release.predictor import Predictor
from flywheel.release.registry import Registry

pytestmark = [pytest.mark.slow]


def test_text_pipeline_deploys_and_predicts_raw_text(dvc_project, prefect_backend) -> None:
    from flows.pipeline import pipeline

    project: Path = dvc_project(
        task=NEWS_PARAMS["task"],
        data={**NEWS_PARAMS["data"], "path": "news"},
        text=NEWS_PARAMS["text"],
        transformer={"max_len": 64, "freeze_layers": 0},  # a preprocess param of every task
        validate={**NEWS_PARAMS["validate"], "suite": "news-flow", "min_rows_per_class": 20},
        model=NEWS_PARAMS["model"],
        train={"max_epochs": 8, "patience": 8, "lr": 0.01, "batch_size": 16},
        compress={"finetune_epochs": 1, "calibration_samples": 64, "variants": ["fp32", "int8"]},
        gate={"min_accuracy": 0.8, "max_drop": 0.03},
    )
    write_news_csv(project / "news" / "train.csv", news_corpus(40, seed=4))

    record = json.loads(
        pipeline(params_file=str(project / "params.yaml"), project=str(project))["record"]
    )
    assert record["deploy"]["status"] == "deployed", record
    registry = Registry(project / "registry")
    card = registry.card(registry.production_version() or "")
    assert card.task == "text_classification" and card.metrics["accuracy"] >= 0.8
    spec = json.loads(registry.spec_path(card.version).read_text())
    assert spec["vocab"][:2] == ["<pad>", "<unk>"] and spec["max_len"] == 32

    predictor = Predictor.from_registry(registry)
    predictions = predictor.predict_instances(
        [
            "The striker scored a penalty and the team won the cup final.",
            {"title": "Markets", "text": "Investors cut dividends as the bank reported revenue."},
        ]
    )
    assert [p.label for p in predictions] == ["2", "3"]
    assert abs(sum(predictions[0].probabilities.values()) - 1.0) < 1e-4
    with pytest.raises(InputError, match="instance 1"):
        predictor.predict_instances(["fine", {"text": 3}])
