"""The train stage on two CPU processes (torchrun, gloo) against one process: the same
outputs, and an accuracy within one point with the same seed, epochs and global batch;
on one machine, and as two "machines" (train.num_nodes 2) over loopback."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from flywheel.core.workspace import open_workspace
from flywheel.datasets.digits import materialise_digits
from flywheel.families.image.manifest import build_manifest
from flywheel.nn import distributed
from flywheel.stages import preprocess, train

pytestmark = [pytest.mark.slow, pytest.mark.team]

PROJECT = Path(__file__).resolve().parents[2]


def _workspace(root: Path, train_cfg: dict) -> object:
    root.mkdir(parents=True)
    shutil.copy(PROJECT / "dvc.yaml", root / "dvc.yaml")
    raw = yaml.safe_load((PROJECT / "params.yaml").read_text())
    raw["train"] = {**(raw.get("train") or {}), **train_cfg}
    (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    ws = open_workspace(root / "params.yaml", root)
    materialise_digits(ws.layout.data)
    manifest = ws.layout.accepted_manifest
    manifest.parent.mkdir(parents=True, exist_ok=True)
    build_manifest(ws.layout.data)[["path", "label", "sha256"]].to_csv(manifest, index=False)
    preprocess.run(ws.params, ws.layout)
    return ws


def test_two_processes_train_like_one(tmp_path: Path) -> None:
    common = {"max_epochs": 8, "patience": 8, "batch_size": 64}
    single = _workspace(tmp_path / "one", common)
    one = train.run(single.params, single.layout)  # type: ignore[attr-defined]
    double = _workspace(tmp_path / "two", {**common, "devices": 2})
    two = train.run(double.params, double.layout)  # type: ignore[attr-defined]
    assert one["processes"] == 1 and two["processes"] == 2
    assert one["backend"] is None and two["backend"] == "gloo"
    # The same outputs, written once (by rank 0).
    for ws in (single, double):
        layout = ws.layout  # type: ignore[attr-defined]
        assert (layout.model_dir / "model.ckpt").is_file()
        assert json.loads(layout.train_metrics.read_text())["processes"] in (1, 2)
        assert layout.train_curve.read_text().startswith("epoch,")
    assert set(one) == set(two)
    accuracy = next(k for k in one if k.startswith("test_acc"))
    assert abs(float(one[accuracy]) - float(two[accuracy])) <= 0.01, (one, two)


def test_two_machines_train_like_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``train.num_nodes: 2`` with one process each, the two "machines" being two
    checkouts on loopback: node 0 runs the stage as its pipeline would, node 1 joins with
    ``flywheel stage train`` and writes nothing; node 0's outputs match one process's."""
    common = {"max_epochs": 8, "patience": 8, "batch_size": 64}
    single = _workspace(tmp_path / "one", common)
    one = train.run(single.params, single.layout)  # type: ignore[attr-defined]
    nodes = [_workspace(tmp_path / f"node{i}", {**common, "num_nodes": 2}) for i in (0, 1)]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        endpoint = f"127.0.0.1:{sock.getsockname()[1]}"
    monkeypatch.setenv(distributed.ENDPOINT_ENV, endpoint)
    monkeypatch.setenv("GLOO_SOCKET_IFNAME", "lo")  # both "machines" are this one
    monkeypatch.delenv(distributed.NODE_RANK_ENV, raising=False)
    joining = subprocess.Popen(
        [sys.executable, "-m", "flywheel.cli", "stage", "train"],
        cwd=nodes[1].root,  # type: ignore[attr-defined]
        env={**distributed.launch_env(), distributed.NODE_RANK_ENV: "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        first = train.run(nodes[0].params, nodes[0].layout)  # type: ignore[attr-defined]
        out, _ = joining.communicate(timeout=600)
    finally:
        joining.kill()
    assert joining.returncode == 0, out[-2000:]
    assert json.loads(out[out.index("{") :]) == {"processes": 2, "node_rank": 1}
    assert first["processes"] == 2
    layout0, layout1 = (n.layout for n in nodes)  # type: ignore[attr-defined]
    assert (layout0.model_dir / "model.ckpt").is_file() and layout0.train_metrics.is_file()
    assert not layout1.train_metrics.exists() and not (layout1.model_dir / "model.ckpt").exists()
    accuracy = next(k for k in one if k.startswith("test_acc"))
    assert abs(float(one[accuracy]) - float(first[accuracy])) <= 0.01, (one, first)


@pytest.mark.gpu
def test_ddp_on_a_gpu_talks_nccl(tmp_path: Path) -> None:
    """Lightning's DDP on CUDA (one process per GPU here): NCCL, not gloo."""
    cfg = {"max_epochs": 2, "patience": 2, "batch_size": 64, "strategy": "ddp"}
    ws = _workspace(tmp_path / "gpu", {**cfg, "accelerator": "gpu"})
    metrics = train.run(ws.params, ws.layout)  # type: ignore[attr-defined]
    assert metrics["accelerator"] == "gpu" and metrics["backend"] == "nccl", metrics
