"""News/topic text classification: labelled text in a table or a text folder, a text CNN.

The vocabulary is learnt in ``preprocess`` from the training split only and shipped inside
the preprocessing spec (:class:`TextSpec`), so ``encode`` turns raw text into ids exactly as
training did, in the gate, in ``flywheel predict`` and in the server.

Leakage: two examples with the same (whitespace-collapsed) text share a ``text_sha256``;
the suite expects that column to be unique, so copies are quarantined before splitting.
Even without that check no text reaches two splits: the split is keyed on that hash
(:func:`flywheel.datasets.splitting.stable_split`), so every copy lands beside the others.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from flywheel.core.config import Params
from flywheel.core.errors import InputError
from flywheel.core.layout import Layout
from flywheel.datasets.arrays import save_split
from flywheel.datasets.splitting import stable_split, write_split_index
from flywheel.families.base import Augment, Family, InstanceLimits
from flywheel.families.text.augment import word_dropout
from flywheel.families.text.instances import instance_text
from flywheel.families.text.sources import read_text_examples, text_hash
from flywheel.families.text.spec import TextSpec
from flywheel.families.text.tokenizer import UNK_ID, Tokenizer

if TYPE_CHECKING:
    from torch import nn


class TextFamily(Family):
    name = "text_classification"
    data_kinds = ("table", "text_folder")
    # Dynamic INT8 is not offered: its ConvInteger computes activation ranges on every call,
    # which costs a 1D-convolution network more than static INT8 saves (see
    # benchmarks/REPORT.md for the measurements).
    variants: ClassVar[tuple[str, ...]] = ("fp32", "int8", "pruned-fp32", "pruned-int8")
    defaults: ClassVar[Mapping[str, Any]] = {
        "data": {"kind": "table"},
        "model": {
            "embedding_dim": 128,
            "channels": [256],
            "kernel_size": 3,
            "hidden": [],
            "dropout": 0.3,
        },
        "train": {"batch_size": 32, "max_epochs": 10, "patience": 10, "weight_decay": 0.5},
        "compress": {"variants": ["fp32", "int8", "pruned-fp32", "pruned-int8"]},
    }
    accepted_columns = ("path", "text", "label", "text_sha256")

    # data and validation
    def manifest(self, params: Params, data: Path) -> pd.DataFrame:
        return read_text_examples(params, data)

    def expectations(self, params: Params, mostly: float) -> list[Any]:
        import great_expectations.expectations as gxe

        v = params.validate_
        labels = sorted(v.labels)
        return [
            gxe.ExpectTableRowCountToBeBetween(min_value=v.min_rows),
            # A missing class or a stray label changes what the model can predict.
            gxe.ExpectColumnDistinctValuesToEqualSet(column="label", value_set=labels),
            gxe.ExpectColumnValuesToNotBeNull(column="label", mostly=mostly),
            gxe.ExpectColumnValuesToBeInSet(column="label", value_set=labels, mostly=mostly),
            gxe.ExpectColumnValuesToNotBeNull(column="text", mostly=mostly),
            gxe.ExpectColumnValuesToBeInSet(
                column="valid_encoding", value_set=[True], mostly=mostly
            ),
            gxe.ExpectColumnValuesToBeBetween(
                column="n_chars", min_value=v.min_chars, max_value=v.max_chars, mostly=mostly
            ),
            gxe.ExpectColumnValuesToBeBetween(
                column="class_count", min_value=v.min_rows_per_class, mostly=mostly
            ),
            # Copies would leak between splits, and across labels they contradict each other.
            gxe.ExpectColumnValuesToBeUnique(column="text_sha256", mostly=mostly),
        ]

    def load_accepted(self, layout: Layout) -> pd.DataFrame:
        return pd.read_csv(
            layout.accepted_manifest,
            dtype={"path": str, "label": str, "text": str, "text_sha256": str},
            keep_default_na=False,
        )

    # preprocessing
    def preprocess(self, params: Params, layout: Layout, accepted: pd.DataFrame) -> dict[str, int]:
        # A column of texts that all look like numbers would be read back as numbers.
        texts = [str(t) for t in accepted["text"]]
        hashes = [str(h) for h in accepted["text_sha256"]] if "text_sha256" in accepted else []
        hashes = hashes or [str(text_hash(t)) for t in texts]
        index = {label: i for i, label in enumerate(params.labels)}
        y_all = accepted["label"].map(index).to_numpy(dtype=np.int64)
        splits = stable_split(hashes, params.split.val, params.split.test, params.seed, y_all)
        cfg = params.text
        tokenizer = Tokenizer.fit(
            (texts[i] for i in splits["train"]),
            max_len=cfg.max_len,
            vocab_size=cfg.vocab_size,
            min_freq=cfg.min_freq,
            lowercase=cfg.lowercase,
        )
        spec = TextSpec(labels=params.labels, tokenizer=tokenizer, family=self.name)
        for name, idx in splits.items():
            x = tokenizer.encode([texts[i] for i in idx])
            save_split(layout.split_file(name), x, y_all[idx])
        spec.save(layout.preprocessing_spec)
        write_split_index(layout, accepted, splits)
        return {name: len(idx) for name, idx in splits.items()}

    def load_spec(self, path: Path) -> TextSpec:
        return TextSpec.load(path)

    # model
    def build_network(self, params: Params, spec: TextSpec) -> nn.Module:
        m = params.model
        from flywheel.families.text.network import TextCNN

        return TextCNN(
            vocab_size=spec.vocab_size,
            num_classes=len(spec.labels),
            embedding_dim=m.embedding_dim,
            channels=m.channels,
            kernel_size=m.kernel_size,
            hidden=m.hidden,
            dropout=m.dropout,
        )

    def example_batch(self, spec: TextSpec, batch: int = 1) -> np.ndarray:
        # Real-looking ids (all <unk>), so tracing and pruning see no all-padding rows.
        return np.full((batch, spec.max_len), UNK_ID, dtype=np.int64)

    def train_augment(self, params: Params) -> Augment | None:
        return word_dropout(params.text.word_dropout)

    # inference
    def encode(
        self, instances: Sequence[Any], spec: TextSpec, limits: InstanceLimits | None = None
    ) -> np.ndarray:
        texts = [instance_text(i, instance, limits) for i, instance in enumerate(instances)]
        return spec.tokenizer.encode(texts)

    def instances_from_rows(self, params: Params, layout: Layout, rows: pd.DataFrame) -> list[Any]:
        return [str(t) for t in rows["text"]]

    def read_inputs(self, paths: Sequence[Path]) -> list[Any]:
        out: list[Any] = []
        for p in paths:
            try:
                data = Path(p).read_bytes()
            except OSError as err:
                raise InputError(f"cannot read {p}: {err.strerror}") from None
            try:
                out.append(data.decode("utf-8-sig"))
            except UnicodeDecodeError as err:
                raise InputError(f"{p}: not valid UTF-8 text (byte {err.start})") from None
        return out
