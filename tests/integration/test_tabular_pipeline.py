"""The real flow for tabular regression in a temporary DVC repository, to a served model.

A diabetes CSV with six broken rows (``validate.mostly`` 0.95) goes through validate -> ...
-> deploy: the broken rows are quarantined and the run goes on. The deployed model answers
raw records through the same ``Predictor`` the server uses, imputes a blank it allows and
refuses a malformed record by name. (A mostly broken table failing the run is covered,
faster, in tests/data/test_tabular_validation.py.)
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from tests.tabular_data import (
    diabetes_frame,
    diabetes_params,
    with_few_bad_rows,
    write_diabetes,
)

from flywheel.core.errors import InputError
from flywheel.release.predictor import Predictor
from flywheel.release.registry import Registry

pytestmark = [pytest.mark.slow]


def _run(project: Path) -> dict:
    from flows.pipeline import pipeline

    return json.loads(
        pipeline(params_file=str(project / "params.yaml"), project=str(project))["record"]
    )


def test_tabular_pipeline_quarantines_deploys_and_predicts(
    dvc_project, prefect_backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Stage subprocesses inherit it: a tiny MLP gains nothing from a second torch thread.
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    raw = diabetes_params(
        data={"path": "table"},
        validate={"suite": "diabetes-flow"},
        train={"max_epochs": 10, "patience": 5},
        compress={"variants": ["fp32", "dynamic-int8"]},  # pruning: see the model test
    )
    project: Path = dvc_project(**raw)
    frame, broken = with_few_bad_rows(diabetes_frame())
    write_diabetes(project / "table" / "diabetes.csv", frame)

    record = _run(project)
    assert record["deploy"]["status"] == "deployed", record
    with (project / "artifacts" / "validation" / "quarantine.csv").open(newline="") as f:
        quarantined = {r["path"] for r in csv.DictReader(f)}
    assert quarantined == {f"diabetes.csv:{i + 1}" for i in broken}
    registry = Registry(project / "registry")
    card = registry.card(registry.production_version() or "")
    assert card.task == "tabular_regression" and card.metrics["r2"] >= 0.3
    spec = json.loads(registry.spec_path(card.version).read_text())
    assert spec["kind"] == "tabular" and spec["categorical"][0]["name"] == "age_band"

    predictor = Predictor.from_registry(registry)
    good = {c: v for c, v in diabetes_frame().iloc[0].items() if c != "progression"}
    blank_bp = {**good, "bp": None, "age_band": "never seen"}
    answers = [p.as_dict() for p in predictor.predict_instances([good, blank_bp])]
    assert all(set(a) == {"value"} and 0 < a["value"] < 400 for a in answers), answers
    with pytest.raises(InputError, match="instance 1: column 'bmi'"):
        predictor.predict_instances([good, {**good, "bmi": "heavy"}])
    (project / "one.csv").write_text(
        "age,sex,bmi,bp,s1,s2,s3,s4,s5,s6,age_band\n59,2,32.1,,157,93.2,38,4,4.8598,87,40-59\n"
    )
    assert len(predictor.predict_files([project / "one.csv"])) == 1
