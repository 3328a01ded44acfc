"""Tabular regression from preprocess to evaluate on the diabetes table (tiny, on CPU).

Checks what the pipeline relies on: the split files are exactly what ``encode`` makes of the
raw records (training and serving share one path), the ONNX graph matches PyTorch, every
variant is measured and the chosen one is within ``gate.max_drop`` of fp32 on R2.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from tests.tabular_data import diabetes_params, write_diabetes

from flywheel.core.config import Params, parse_params
from flywheel.core.layout import Layout
from flywheel.core.ort import make_session
from flywheel.datasets.arrays import load_split
from flywheel.families import get_family
from flywheel.families.tabular.manifest import build_tabular_manifest
from flywheel.measure.metrics import regression_metrics
from flywheel.nn.checkpoint import load_network
from flywheel.stages.preprocess import run as run_preprocess
from flywheel.stages.train import run as run_train

pytestmark = [pytest.mark.slow]

VARIANTS = ["fp32", "int8", "pruned-fp32", "pruned-int8", "dynamic-int8"]


@dataclass(frozen=True)
class Trained:
    params: Params
    layout: Layout
    train: dict[str, Any]
    export: dict[str, Any]
    compress: dict[str, Any]
    evaluation: dict[str, Any]


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    # A tiny MLP gains nothing from a second thread and, on a busy 2-core machine, loses a lot.
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, one_thread: None) -> Trained:
    from flywheel.stages.compress.run import run as run_compress
    from flywheel.stages.evaluate.run import run as run_evaluate
    from flywheel.stages.export import run as run_export

    root = tmp_path_factory.mktemp("tabular-ws")
    raw = diabetes_params(
        train={"max_epochs": 30, "accelerator": "cpu"},
        compress={"finetune_epochs": 5, "calibration_samples": 128, "variants": VARIANTS},
        evaluate={"latency_runs": 30, "warmup_runs": 3, "throughput_runs": 3},
    )
    params = parse_params({**raw, "seed": 3})
    layout = Layout.from_params(params, root)
    write_diabetes(layout.data / "diabetes.csv")
    accepted = layout.accepted_manifest
    accepted.parent.mkdir(parents=True, exist_ok=True)
    # Sorted by path, as the validate stage writes it (so split files follow splits.json).
    manifest = build_tabular_manifest(params, layout.data)[["path"]].sort_values("path")
    manifest.to_csv(accepted, index=False)
    run_preprocess(params, layout)
    return Trained(
        params,
        layout,
        run_train(params, layout),
        run_export(params, layout),
        run_compress(params, layout),
        run_evaluate(params, layout),
    )


def test_split_files_are_what_encode_makes_of_raw_records(trained: Trained) -> None:
    family = get_family("tabular_regression")
    spec = family.load_spec(trained.layout.preprocessing_spec)
    for split in ("train", "test"):
        instances, y = family.raw_split(trained.params, trained.layout, split)
        x_file, y_file = load_split(trained.layout.split_file(split))
        np.testing.assert_array_equal(family.encode(instances, spec), x_file)
        np.testing.assert_array_equal(y, y_file)
    assert x_file.dtype == np.float32 and y_file.dtype == np.float32
    # 10 numeric columns + one-hot of the 3 age bands; bp's blanks take the train median.
    assert x_file.shape[1] == 13 and spec.numeric[3].fill is not None
    assert spec.numeric[2].fill is None  # bmi allows no blanks, so it has no fill


def test_trained_model_learns_something(trained: Trained) -> None:
    assert trained.train["test_r2"] > 0.3
    assert trained.train["test_rmse"] < 70  # the target's std is about 77


def test_onnx_matches_pytorch_in_target_units(trained: Trained) -> None:
    report = trained.export
    assert report["max_abs_diff"] <= report["atol"]
    x, y = load_split(trained.layout.split_file("test"))
    spec = get_family("tabular_regression").load_spec(trained.layout.preprocessing_spec)
    net = load_network(trained.layout.checkpoint, trained.params, spec)
    with torch.inference_mode():
        expected = net(torch.from_numpy(x)).numpy()
    session = make_session(trained.layout.variant_file("fp32"))
    got = session.run(None, {"input": x})[0]
    assert got.shape == (len(x), 1)
    np.testing.assert_allclose(got, expected, atol=1e-3)
    # Outputs are predictions, not standardised scores: the metrics read them as they are.
    assert regression_metrics(got, y)["r2"] == pytest.approx(trained.train["test_r2"], abs=1e-5)


def test_every_variant_is_measured_and_the_winner_is_within_max_drop(trained: Trained) -> None:
    report = trained.evaluation
    assert set(report["variants"]) == set(VARIANTS) and report["metric"] == "r2"
    fp32 = report["variants"]["fp32"]["metrics"]["r2"]
    winner = report["variants"][report["winner"]]
    assert winner["metrics"]["r2"] >= fp32 - trained.params.gate.max_drop - 1e-9
    assert report["ratios"]["winner_metric_drop"] <= trained.params.gate.max_drop
    pruned = trained.compress["pruned-fp32"]["prune"]
    assert pruned["params_after"] < pruned["params_before"]  # the hidden layer really shrank
    assert trained.compress["pruned-fp32"]["size_bytes"] < trained.compress["fp32"]["size_bytes"]


def test_linear_model_exports(tmp_path: Path, trained: Trained) -> None:
    """``model.hidden: []`` is a linear regression on the encoded features."""
    from flywheel.nn.onnx_export import check_parity, export_family_network

    params = parse_params(diabetes_params(model={"hidden": []}))
    family = get_family("tabular_regression")
    spec = family.load_spec(trained.layout.preprocessing_spec)
    net = family.build_network(params, spec).eval()
    assert [type(m).__name__ for m in net.body] == ["Linear"]
    path = export_family_network(net, params, spec, tmp_path / "linear.onnx")
    x, _ = load_split(trained.layout.split_file("test"))
    assert check_parity(net, path, x, atol=1e-3) <= 1e-3
