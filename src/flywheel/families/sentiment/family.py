"""Sentiment: fine-tuning the packaged MiniLM encoder on labelled sentences.

The data side is the text family's (a table such as ``sentence<TAB>label`` files, or a
text folder, read by :func:`flywheel.families.text.sources.read_text_examples`; the same suite,
accepted manifest and instances). The preprocessing spec records the
tokenizer (package, version, file hash) and ``max_len``; the model is MiniLM with mean
pooling and a small head, exported to ONNX with dynamic batch and sequence axes.

Compression offers what suits a transformer: dynamic INT8 of the MatMuls (activation
ranges computed per call, so no calibration set misjudges attention's outliers), and ONNX
Runtime's transformer optimizer (attention, skip-layer-norm, GELU and embedding fusion, with
the encoder's heads and hidden size from the spec) alone, then dynamic INT8, static QDQ INT8
or, on a GPU, FP16. Every one is scored on the test split and the evaluate stage deploys the
fastest within ``gate.max_drop``. Static QDQ of the unfused graph is not offered: its fixed
ranges cover attention's MatMuls too, and the fine-tuned model fell from 0.93 to 0.71 test
accuracy on the amazon/yelp sentences (on the fused graph, attention stays in float). Channel
pruning is not offered either: the pruner knows convolutions and linear layers, not heads.

Everything heavy (torch transformers, tokenizers) comes from the optional ``[transformer]``
extra; without it the family refuses to start with the install command in the message.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from flywheel.core.config import Params
from flywheel.core.layout import Layout
from flywheel.datasets.arrays import save_split
from flywheel.datasets.splitting import stable_split, write_split_index
from flywheel.families.base import Augment, InstanceLimits
from flywheel.families.sentiment.package import model_record, require_transformer_extra
from flywheel.families.sentiment.spec import SentimentSpec
from flywheel.families.sentiment.tokenizer import current_ref, tokenizer_for
from flywheel.families.text.family import TextFamily
from flywheel.families.text.instances import instance_text

if TYPE_CHECKING:
    from torch import nn

# Example inputs for export tracing: a real sentence plus padding, so the trace records the
# masking path (an unpadded example would be just as valid but is not what batches hold).
_EXAMPLE_TEXT = "a great movie"
_EXAMPLE_PADDING = 2


class SentimentFamily(TextFamily):
    """The text family's data side (reader, suite, accepted manifest, instances, files),
    with MiniLM's tokenizer and network in place of the learnt vocabulary and text CNN."""

    name = "sentiment"
    # fp32 is the reference; fp16 is offered to every family by the compress stage. The
    # gpu_only kinds (fp16, fused-fp16) are built only where a GPU runs them.
    variants = (
        "fp32",
        "dynamic-int8",
        "fused-fp32",
        "fused-dynamic-int8",
        "fused-int8",
        "fused-fp16",
    )
    defaults = {
        "data": {"kind": "table"},
        "model": {"hidden": [], "dropout": 0.1},
        "transformer": {"freeze_layers": 4},
        "train": {
            "batch_size": 32,
            "lr": 2e-4,
            "max_epochs": 2,
            "patience": 2,
            "weight_decay": 0.01,
        },
        "compress": {
            "variants": [
                "fp32",
                "dynamic-int8",
                "fused-fp32",
                "fused-dynamic-int8",
                "fused-int8",
                "fp16",
                "fused-fp16",
            ],
            "calibration_samples": 64,
        },
        "evaluate": {"throughput_runs": 10},
    }
    # Rows are padded to the batch's longest sentence, not to max_len.
    dynamic_input_axes = {1: "sequence"}

    def __init__(self) -> None:
        # Before any stage runs: a missing extra is a configuration problem, not a crash.
        require_transformer_extra()

    # preprocessing
    def preprocess(self, params: Params, layout: Layout, accepted: pd.DataFrame) -> dict[str, int]:
        # A column of texts that all look like numbers would be read back as numbers.
        texts = [str(t) for t in accepted["text"]]
        hashes = [str(h) for h in accepted["text_sha256"]]
        index = {label: i for i, label in enumerate(params.labels)}
        y = accepted["label"].map(index).to_numpy(dtype=np.int64)
        splits = stable_split(hashes, params.split.val, params.split.test, params.seed, y)
        spec = SentimentSpec(
            labels=params.labels,
            tokenizer=current_ref(params.transformer.max_len),
            model=model_record(),
        )
        for name, idx in splits.items():
            # The very function the server runs, so training ids cannot drift from serving's.
            x = self.encode([texts[i] for i in idx], spec)
            save_split(layout.split_file(name), x, y[idx])
        spec.save(layout.preprocessing_spec)
        write_split_index(layout, accepted, splits)
        return {name: len(idx) for name, idx in splits.items()}

    def load_spec(self, path: Path) -> SentimentSpec:  # type: ignore[override]
        return SentimentSpec.load(path)

    # model
    def build_network(  # type: ignore[override]
        self, params: Params, spec: SentimentSpec
    ) -> nn.Module:
        from flywheel.families.sentiment.network import build_minilm_classifier

        return build_minilm_classifier(
            len(spec.labels),
            head_hidden=params.model.hidden,
            dropout=params.model.dropout,
            freeze_layers=params.transformer.freeze_layers,
            pad_id=spec.tokenizer.pad_id,
        )

    def example_batch(  # type: ignore[override]
        self, spec: SentimentSpec, batch: int = 1
    ) -> np.ndarray:
        ids = self.encode([_EXAMPLE_TEXT], spec)
        ids = np.pad(ids, ((0, 0), (0, _EXAMPLE_PADDING)), constant_values=spec.tokenizer.pad_id)
        return np.repeat(ids, batch, axis=0)

    def train_augment(self, params: Params) -> Augment | None:
        # The text family's word dropout writes its own <unk> id, which means another
        # token to MiniLM; dropout inside the encoder regularises instead.
        return None

    # inference
    def encode(  # type: ignore[override]
        self, instances: Sequence[Any], spec: SentimentSpec, limits: InstanceLimits | None = None
    ) -> np.ndarray:
        texts = [instance_text(i, instance, limits) for i, instance in enumerate(instances)]
        return tokenizer_for(spec.tokenizer).encode(texts)
