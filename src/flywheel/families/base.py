"""What a model family supplies to the shared pipeline.

Every stage (validate, preprocess, train, export, compress, evaluate), the gate, the
registry, ``flywheel predict`` and the server are written once against :class:`Family`;
``params.task`` picks the implementation. A family owns its data format, its expectations,
its preprocessing (learnt on the training split and shipped with the model as JSON), its
network and how raw inputs become model tensors, so serving never re-implements any of it.

Every family's network takes ONE input tensor named ``input`` (batch first) and returns one
output named ``logits`` (class scores, or a single column of predictions for regression).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

import numpy as np
import pandas as pd

from flywheel.config import Params
from flywheel.layout import Layout

Objective = Literal["classification", "regression"]
if TYPE_CHECKING:
    import torch
    from torch import nn

# torch is imported where a network is built or trained, never by serving or the flow's
# own process: they only encode inputs and read specs, and torch costs seconds and ~200 MB.
Augment = Callable[["torch.Tensor"], "torch.Tensor"]


class Spec(Protocol):
    """The preprocessing learnt from the training split, saved beside every model."""

    @property
    def labels(self) -> tuple[str, ...]: ...

    def save(self, path: Path) -> None: ...


class Family(ABC):
    name: ClassVar[str]
    objective: ClassVar[Objective] = "classification"
    # Compression variants that make sense for this family's network (see compress stage).
    variants: ClassVar[tuple[str, ...]] = ("fp32", "int8", "pruned-fp32", "pruned-int8")
    # Manifest columns written to the accepted manifest that the preprocess stage reads.
    accepted_columns: ClassVar[tuple[str, ...]] = ("path", "label")
    # Axes of ``input`` beyond the batch that vary per call (e.g. sequence length).
    dynamic_input_axes: ClassVar[dict[int, str]] = {}

    # data and validation
    @abstractmethod
    def manifest(self, params: Params, data: Path) -> pd.DataFrame:
        """One row per example with a unique ``path`` column identifying it, plus the
        columns the expectations check. Must never raise on bad content: bad content is
        a finding, recorded in columns for the expectations to reject."""

    @abstractmethod
    def expectations(self, params: Params, mostly: float) -> list[Any]:
        """Great Expectations expectations over :meth:`manifest`'s table."""

    # preprocessing
    @abstractmethod
    def preprocess(self, params: Params, layout: Layout, accepted: pd.DataFrame) -> dict[str, int]:
        """Split, fit preprocessing on train only, write ``layout.split_file`` for each split
        and the spec to ``layout.preprocessing_spec``; returns rows per split."""

    @abstractmethod
    def load_spec(self, path: Path) -> Spec: ...

    # model
    @abstractmethod
    def build_network(self, params: Params, spec: Any) -> nn.Module: ...

    @abstractmethod
    def example_input(self, spec: Any, batch: int = 1) -> torch.Tensor:
        """A valid input batch, for export tracing, pruning and probes."""

    def train_augment(self, params: Params) -> Augment | None:
        """A batch transform applied to training batches only; None for no augmentation."""
        return None

    # inference
    @abstractmethod
    def encode(self, instances: Sequence[Any], spec: Any) -> np.ndarray:
        """Raw instances (as a client sends them) to one model input batch. Raises
        :class:`flywheel.data.images.InputError` naming the bad instance."""

    def raw_split(self, params: Params, layout: Layout, split: str) -> tuple[list[Any], np.ndarray]:
        """The split's examples as raw instances (what a client would send) and targets.

        The gate measures every model from these, each through its own preprocessing spec,
        so models trained on different data (other statistics, another vocabulary) are
        compared on equal terms, the way the server will run them."""
        import json

        paths = json.loads((layout.preprocessed_dir / "splits.json").read_text())[split]
        accepted = self.load_accepted(layout).set_index("path")
        rows = accepted.loc[paths]
        return self.instances_from_rows(params, layout, rows), self.targets_from_rows(params, rows)

    def load_accepted(self, layout: Layout) -> pd.DataFrame:
        return pd.read_csv(
            layout.validation_dir / "manifest.csv",
            dtype={"path": str, "label": str},
            keep_default_na=False,
        )

    def targets_from_rows(self, params: Params, rows: pd.DataFrame) -> np.ndarray:
        index = {label: i for i, label in enumerate(params.labels)}
        return rows["label"].map(index).to_numpy(dtype=np.int64)

    @abstractmethod
    def instances_from_rows(self, params: Params, layout: Layout, rows: pd.DataFrame) -> list[Any]:
        """Raw instances for rows of the accepted manifest."""

    @abstractmethod
    def read_inputs(self, paths: Sequence[Path]) -> list[Any]:
        """Instances from files named on the ``flywheel predict`` command line."""

    def postprocess(self, outputs: np.ndarray, spec: Any) -> list[dict[str, Any]]:
        if self.objective == "regression":
            return [{"value": round(float(v), 6)} for v in outputs.reshape(len(outputs), -1)[:, 0]]
        from flywheel.metrics import softmax

        probs = softmax(outputs)
        labels = spec.labels
        return [
            {
                "label": labels[int(row.argmax())],
                "probabilities": {
                    lab: round(float(p), 6) for lab, p in zip(labels, row, strict=True)
                },
            }
            for row in probs
        ]
