"""The text CNN through preprocess -> train -> export -> compress -> evaluate, tiny and real.

On a synthetic news corpus the test checks what the pipeline promises for this family:
the ONNX graph matches PyTorch, every variant the family offers is built and measured,
and the variant evaluate picks stays within ``gate.max_drop`` of fp32.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.text_corpus import NEWS_PARAMS, news_corpus, write_news_csv

from flywheel.core.config import parse_params
from flywheel.core.layout import Layout
from flywheel.core.ort import CPU, make_session
from flywheel.families.text.family import TextFamily
from flywheel.families.text.sources import read_text_examples
from flywheel.nn.checkpoint import load_network, predict_outputs
from flywheel.stages.preprocess import run as run_preprocess
from flywheel.stages.train import run as run_train

pytestmark = [pytest.mark.slow]

RAW: dict[str, Any] = {
    **NEWS_PARAMS,
    "seed": 5,
    "data": {**NEWS_PARAMS["data"], "path": "news.csv"},
    "split": {"val": 0.2, "test": 0.2},
    "train": {"max_epochs": 12, "batch_size": 32, "lr": 0.01, "patience": 4, "accelerator": "cpu"},
    "compress": {
        "prune_ratios": [0.5],
        "finetune_epochs": 2,
        "calibration_samples": 64,
        "variants": list(TextFamily.variants),
    },
    "evaluate": {
        "latency_runs": 20,
        "warmup_runs": 3,
        "throughput_batch": 16,
        "throughput_runs": 3,
        "intra_op_threads": 1,
    },
    "gate": {"min_accuracy": 0.7, "max_drop": 0.03},
}


def test_text_cnn_end_to_end(tmp_path: Path) -> None:
    from flywheel.stages.compress.run import run as run_compress
    from flywheel.stages.evaluate.run import run as run_evaluate
    from flywheel.stages.export import run as run_export

    params = parse_params(RAW)
    layout = Layout.from_params(params, tmp_path)
    write_news_csv(layout.data, news_corpus(50, seed=2))
    accepted = layout.accepted_manifest
    accepted.parent.mkdir(parents=True, exist_ok=True)
    examples = read_text_examples(params, layout.data)
    examples.loc[:, list(TextFamily.accepted_columns)].to_csv(accepted, index=False)

    run_preprocess(params, layout)
    trained = run_train(params, layout)
    assert trained["test_accuracy"] >= 0.8, trained

    exported = run_export(params, layout)
    assert exported["max_abs_diff"] <= params.evaluate.export_atol
    assert exported["input_dtype"] == "int64"

    family = TextFamily()
    spec = family.load_spec(layout.preprocessing_spec)
    net = load_network(layout.checkpoint, params, spec)
    session = make_session(layout.variant_file("fp32"), providers=[CPU])
    # Raw text through encode gives the same logits in ONNX Runtime as in PyTorch.
    texts = [f"{title}\n{body}" for _, title, body in news_corpus(3, seed=99)]
    ids = family.encode(texts, spec)
    onnx_out = session.run(None, {"input": ids})[0]
    np.testing.assert_allclose(onnx_out, predict_outputs(net, ids), atol=1e-4)

    recipes = run_compress(params, layout)
    assert set(TextFamily.variants) <= set(recipes)
    pruned = recipes["pruned-fp32"]["prune"]
    assert pruned["macs_after"] < pruned["macs_before"]
    assert recipes["int8"]["size_bytes"] < recipes["fp32"]["size_bytes"]

    report = run_evaluate(params, layout)
    winner = report["winner"]
    assert report["ratios"]["winner_metric_drop"] <= params.gate.max_drop + 1e-9
    assert report["variants"][winner]["qualified"]
    saved = json.loads(layout.evaluation_report.read_text())
    assert saved["winner"] == winner and len(saved["variants"]) == len(TextFamily.variants)
