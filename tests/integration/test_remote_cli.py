"""``flywheel remote status`` in a fresh process against a real S3-compatible server on
loopback, and the one-line errors when the remote is unreachable or misconfigured."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from tests.integration.remote_helpers import remote_section

from flywheel.core.loop_sections import MonitorConfig
from flywheel.core.remote_section import RemoteConfig
from flywheel.families.base import StoredInstance
from flywheel.monitor.prediction_log import PredictionLog
from flywheel.monitor.shared_log import LogShipper
from flywheel.pipeline.dvc import init_repository
from flywheel.release.registry import open_registry
from flywheel.remote.objects import ObjectStore
from flywheel.serving.remote_feedback import RemoteFeedbackStore

PROJECT = Path(__file__).resolve().parents[2]


def _project(root: Path, remote: dict[str, object]) -> Path:
    root.mkdir()
    (root / "dvc.yaml").write_text((PROJECT / "dvc.yaml").read_text())
    raw = {"validate": {"suite": "digits", "labels": [str(i) for i in range(10)]}}
    (root / "params.yaml").write_text(yaml.safe_dump({**raw, "remote": remote}))
    init_repository(root, author="ci")
    return root


def _cli(cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": f"{PROJECT / 'src'}{os.pathsep}{PROJECT}"}
    return subprocess.run(
        [sys.executable, "-m", "flywheel.cli", *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_status_names_what_is_where(tmp_path: Path, remote: RemoteConfig) -> None:
    model, spec = tmp_path / "m.onnx", tmp_path / "spec.json"
    model.write_bytes(b"model")
    spec.write_text("{}")
    other = open_registry(tmp_path / "other" / "registry", remote)
    fields = {
        "task": "image_classification",
        "labels": ("0", "1"),
        "data_hash": "d",
        "params_hash": "p",
        "code_version": "t",
        "variant": "fp32",
        "recipe": {},
        "metrics": {},
        "params": {},
        "evaluation": {},
    }
    other.promote(other.register(model, spec, fields).version)
    root = _project(tmp_path / "here", remote_section(remote))
    # This machine's server logged two predictions and shipped the first.
    log = PredictionLog(root / ".flywheel" / "predictions", MonitorConfig())
    log.append([{"kind": "prediction", "id": "a" * 32}])
    LogShipper(log, ObjectStore(remote)).ship()
    log.append([{"kind": "prediction", "id": "b" * 32}])
    proc = _cli(root, "remote", "status", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["url"] == remote.url and out["registry"]["production"] == "v0001"
    assert out["registry"]["missing_locally"] == ["v0001"]
    assert out["dvc"]["run_cache"] == {"remote": 0, "local": 0, "not_pushed": 0, "not_pulled": 0}
    line = len(json.dumps({"kind": "prediction", "id": "b" * 32}, separators=(",", ":"))) + 1
    assert out["prediction_log"] == {"replicas": 1, "chunks": 1, "not_shipped_bytes": line}
    assert "testing" not in proc.stdout + proc.stderr  # no credential ever printed
    human = _cli(root, "remote", "status")
    assert human.returncode == 0 and "production  v0001" in human.stdout


@pytest.mark.parametrize(
    ("section", "code", "needle"),
    [
        ({"endpoint_url": "http://127.0.0.1:9"}, 5, "cannot reach the remote"),
        ({"url": "s3://missing-bucket-x/p"}, 1, "bucket 'missing-bucket-x'"),
        ({"url": "https://not-s3/p"}, 2, "not an s3://bucket/prefix URL"),
    ],
)
def test_errors_are_one_line(
    tmp_path: Path, remote: RemoteConfig, section: dict[str, str], code: int, needle: str
) -> None:
    root = _project(tmp_path / "here", {**remote_section(remote), **section})
    proc = _cli(root, "remote", "status")
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert "Traceback" not in proc.stderr and len(lines) == 1, proc.stderr
    assert needle in lines[0] and proc.returncode == code, (proc.returncode, lines)


def test_feedback_review_sees_every_replica_and_decides_once(
    tmp_path: Path, remote: RemoteConfig
) -> None:
    """`flywheel feedback list/reject` on two machines: each lists what a replica stored
    on the remote; a record rejected on one is gone from the other's list."""
    replica = RemoteFeedbackStore(tmp_path / "replica" / "feedback", remote)
    record = replica.save("3", StoredInstance(b"png", ".png"), {"model_version": "v0001"})
    here = _project(tmp_path / "here", remote_section(remote))
    there = _project(tmp_path / "there", remote_section(remote))
    listed = _cli(here, "feedback", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [r["id"] for r in json.loads(listed.stdout)] == [record]
    assert [r["id"] for r in json.loads(_cli(there, "feedback", "list", "--json").stdout)] == [
        record
    ]
    rejected = _cli(here, "feedback", "reject", record, "--reason", "spam", "--json")
    assert rejected.returncode == 0 and json.loads(rejected.stdout) == {"rejected": [record]}
    assert json.loads(_cli(there, "feedback", "list", "--json").stdout) == []
    assert json.loads(_cli(here, "feedback", "list", "--json").stdout) == []
