"""``flywheel init`` then ``flywheel run``, through the command line, on generated data of
every kind in one real git + DVC project on a real Prefect server: the files init writes
are all a run needs (data, suite, labels, checks, gate). Only training length and timing
repeats are shortened for the test (:data:`FAST`); no data or validate key is touched.

Each run's decision and first metric go to ``$FLYWHEEL_INIT_FIGURES`` (JSON) when set.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests import onboard_data
from tests.figures import record_figures
from tests.sentiment_data import SENTIMENT_PARAMS
from typer.testing import CliRunner

from flywheel.cli import app
from flywheel.core.config import merge
from flywheel.pipeline.dvc import init_repository

pytestmark = [pytest.mark.slow]

PROJECT = Path(__file__).resolve().parents[2]
FAST: dict[str, Any] = {
    "compress": {"finetune_epochs": 1, "calibration_samples": 32},
    "evaluate": {"latency_runs": 20, "warmup_runs": 3, "throughput_runs": 3},
}
# name -> (how the data is made, init's options, what the test shortens beyond FAST)
KINDS: dict[str, tuple[Any, list[str], dict[str, Any]]] = {
    "photos": (lambda d: onboard_data.image_folder(d / "photos", 30), [], {}),
    "articles": (lambda d: onboard_data.text_folder(d / "articles", 30), [], {}),
    "headlines": (lambda d: onboard_data.news_csv(d / "headlines.csv", 30), [], {}),
    "clinic": (lambda d: onboard_data.tabular_parquet(d / "clinic.parquet"), [], {}),
    # MiniLM on 100 sentences: a few steps at a fine-tuning rate move it too little.
    "reviews": (
        lambda d: onboard_data.sentiment_tsv(d / "reviews", 50),
        ["--task", "sentiment"],
        {"train": SENTIMENT_PARAMS["train"], "transformer": {"freeze_layers": 5}},
    ),
}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("init-runs") / "project"
    root.mkdir()
    for name in ("dvc.yaml", "params.yaml", "params.resolved.yaml"):
        (root / name).write_bytes((PROJECT / name).read_bytes())
    # The default paths.code (src/flywheel) as in a checkout: DVC tracks the real source.
    (root / "src").symlink_to(PROJECT / "src")
    init_repository(root, author="ci")
    for make, _, _ in KINDS.values():
        make(root / "datasets")
    return root


def _invoke(*argv: str) -> Any:
    result = CliRunner().invoke(app, list(argv))
    assert result.exit_code == 0, result.output
    return result


@pytest.mark.parametrize("name", list(KINDS))
def test_init_then_run_deploys(
    project: Path, prefect_backend: None, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.chdir(project)
    _, options, shorter = KINDS[name]
    data = next((project / "datasets").glob(f"{name}*"))
    out = _invoke("init", str(data.relative_to(project)), *options).output
    params_file = f"params/{name}.yaml"
    assert f"next: flywheel validate --params {params_file} && flywheel run" in out
    written = yaml.safe_load((project / params_file).read_text())
    fast = project / "params" / f"{name}-fast.yaml"
    fast.write_text(yaml.safe_dump(merge(merge(written, FAST), shorter), sort_keys=False))
    _invoke("validate", "--params", str(fast))
    record = json.loads(_invoke("run", "--params", str(fast), "--json").stdout)
    assert record["deploy"]["status"] == "deployed", record
    if name == "articles":
        _check_validation_artifacts()
    _record_figures(name, out, written, record)


def _latest(client: Any, key: str) -> Any:
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    (artifact,) = client.read_artifacts(
        artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
        sort=ArtifactSort.CREATED_DESC,
        limit=1,
    )
    return artifact


def _check_validation_artifacts() -> None:
    """The run page explains the validation on its own: every expectation with its result
    and the rows that broke it, the quarantine, and where the Data Docs are."""
    from prefect import get_client

    with get_client(sync_client=True) as client:
        table = _latest(client, "validation")
        quarantine = _latest(client, "quarantine")
        docs = _latest(client, "data-docs")
    rows = json.loads(table.data) if isinstance(table.data, str) else table.data
    encoding = next(r for r in rows if r["expectation"].endswith("(valid_encoding)"))
    assert encoding["result"] == "passed" and "1/latin1.txt" in encoding["examples"]
    assert {r["result"] for r in rows} == {"passed"}
    assert re.search(r"\b1 of \d+ rows quarantined", quarantine.data), quarantine.data
    assert "`1/latin1.txt`" in quarantine.data
    # No model server of this project answers: the file, and the address that would serve it.
    assert "(file://" in docs.data and "/data-docs/validations/" in (docs.description or "")


def _record_figures(name: str, out: str, written: dict[str, Any], record: dict[str, Any]) -> None:
    figures = {
        "init": out.splitlines(),
        "task": written["task"],
        "deploy": record["deploy"],
        "variants": record.get("variants"),
    }
    record_figures("FLYWHEEL_INIT_FIGURES", name, figures)
