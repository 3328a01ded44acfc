"""What a run reports: the variant table says why each variant won, lost or was not tried
at the gate, and a refusal shows every candidate's checks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from flywheel.core.workspace import Workspace, open_workspace
from flywheel.pipeline.record import DataVersion, RunRecord
from flywheel.pipeline.summary import run_text, summary_markdown, variant_rows

PROJECT = Path(__file__).resolve().parents[3]


def _variant(score: float, kb: int, verdict: str) -> dict:
    return {
        "score": score,
        "size_bytes": kb * 1024,
        "latency_p50_ms": 0.02,
        "latency_p99_ms": 0.03,
        "throughput_per_s": 1000.0,
        "verdict": verdict,
    }


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    shutil.copy(PROJECT / "params.yaml", tmp_path / "params.yaml")
    ws = open_workspace(tmp_path / "params.yaml", tmp_path)
    report = {
        "metric": "accuracy",
        "winner": "pruned-fp32@0.75",
        "ranking": ["pruned-fp32@0.75", "pruned-fp32", "fp32"],
        "variants": {
            "fp32": _variant(0.99, 120, "ranked 3 of 3: slower"),
            "pruned-fp32": _variant(0.99, 55, "ranked 2 of 3: ties the winner's latency"),
            "pruned-fp32@0.75": _variant(0.99, 16, "winner: smallest file of 2 variants tied"),
            "int8": _variant(0.90, 40, "rejected: accuracy 0.0900 worse than fp32"),
        },
    }
    ws.layout.evaluation_report.parent.mkdir(parents=True)
    ws.layout.evaluation_report.write_text(json.dumps(report))
    return ws


def _check(name: str, passed: bool, detail: str) -> dict:
    return {"name": name, "value": 0.0, "threshold": 0.0, "passed": passed, "detail": detail}


def _trial(variant: str, verdict: str, passed: bool) -> dict:
    checks = [_check("vs_production_size", passed, f"size of {variant} vs production's")]
    return {"variant": variant, "verdict": verdict, "result": {"checks": checks}}


def test_the_table_says_what_the_gate_did_with_each_variant(ws: Workspace) -> None:
    deploy = {
        "status": "deployed",
        "version": "v0002",
        "variant": "pruned-fp32",
        "reason": "promoted pruned-fp32 as v0002",
        "gate": {"checks": [_check("vs_production_size", True, "size 1.00x")]},
        "trials": [
            _trial("pruned-fp32@0.75", "refused: size 3.42x production's (max 2.0x)", False),
            _trial("pruned-fp32", "chosen: the best-ranked variant that passed the gate", True),
            _trial("fp32", "passed the gate; a higher-ranked variant was chosen", True),
        ],
    }
    gate = {r["variant"]: r["gate"] for r in variant_rows(ws, deploy)}
    assert gate["pruned-fp32@0.75"].startswith("refused: size 3.42x")
    assert gate["pruned-fp32"].startswith("deployed as v0002")
    assert gate["fp32"].startswith("passed the gate")
    assert gate["int8"] == "not a candidate"


def test_nothing_to_do_names_the_candidate_that_is_production(ws: Workspace) -> None:
    deploy = {"status": "unchanged", "version": "v0001", "variant": "pruned-fp32", "trials": []}
    gate = {r["variant"]: r["gate"] for r in variant_rows(ws, deploy)}
    assert gate["pruned-fp32"] == "is production (v0001): nothing to deploy"
    assert gate["pruned-fp32@0.75"].startswith("not tried: production is one of")


def test_a_refusal_shows_every_candidates_checks(ws: Workspace) -> None:
    deploy = {
        "status": "refused",
        "version": "v0001",
        "reason": "no candidate passed the gate against production v0001",
        "gate": None,
        "trials": [
            _trial("pruned-fp32@0.75", "refused: size", False),
            _trial("pruned-fp32", "refused: size", False),
        ],
    }
    record = RunRecord("default", DataVersion("abc.dir", "data.dvc"), deploy=deploy)
    record.status = "refused"
    markdown = summary_markdown(record, variant_rows(ws, deploy))
    assert "**refused**" in markdown
    assert markdown.count("FAIL `vs_production_size`") == 2
    text = run_text({"data_hash": "abc.dir", "stages": {}, "deploy": deploy})
    assert "decision: refused" in text and text.count("FAIL vs_production_size") == 2
