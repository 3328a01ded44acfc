"""What a model family supplies to the shared pipeline.

Every stage (validate, preprocess, train, export, compress, evaluate), the gate, the
registry, ``flywheel predict`` and the server are written once against :class:`Family`;
``params.task`` picks the implementation. A family owns its data format, its expectations,
its preprocessing (learnt on the training split and shipped with the model as JSON), its
network and how raw inputs become model tensors, so serving never re-implements any of it.

Every family's network takes ONE input tensor named ``input`` (batch first) and returns one
output named ``logits`` (class scores, or a single column of predictions for regression).

Serving uses only the torch-free half of a family (encode, check, stored form, example
batches); torch is imported where a network is built or trained.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

import numpy as np

Objective = Literal["classification", "regression"]
if TYPE_CHECKING:
    import pandas as pd
    import torch
    from torch import nn

    from flywheel.core.config import Params
    from flywheel.core.layout import Layout

# torch is imported where a network is built or trained, never by serving or the flow's
# own process: they only encode inputs and read specs, and importing torch costs seconds
# and hundreds of MB. pandas likewise where tables are read: resolving a params file loads
# its family (for the task's defaults), and an unchanged `flywheel run` reads no table.
Augment = Callable[["torch.Tensor"], "torch.Tensor"]


class Spec(Protocol):
    """The preprocessing learnt from the training split, saved beside every model."""

    @property
    def labels(self) -> tuple[str, ...]: ...

    def save(self, path: Path) -> None: ...


@dataclass(frozen=True)
class InstanceLimits:
    """What a server accepts in an instance a client sent, beyond what the spec itself
    needs. :meth:`Family.encode` and :meth:`Family.stored_form` get one for instances that
    came over the network and ``None`` for files the pipeline or the CLI read, which keep
    the lenient rules training was built on (the same encoding, fewer refusals)."""

    max_image_pixels: int
    # Pillow format names; only their decoders are tried (never e.g. EPS, which runs
    # Ghostscript).
    image_formats: tuple[str, ...]
    # Pillow modes accepted; None: any mode that converts to the model's.
    image_modes: tuple[str, ...] | None
    max_text_chars: int
    max_text_bytes: int
    # All the images of one request together (None: no bound beyond max_image_pixels each).
    max_request_pixels: int | None = None


def canonical_json(value: Any) -> bytes:
    """One byte form per JSON value (sorted keys, no spaces, UTF-8), so a client's own
    formatting never reaches disk."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


@dataclass(frozen=True)
class StoredInstance:
    """An instance as it is kept on disk (feedback): its bytes and the file suffix they need."""

    data: bytes
    suffix: str


class Family(ABC):
    name: ClassVar[str]
    objective: ClassVar[Objective] = "classification"
    # ``data.kind`` values this family reads; the first is its default.
    data_kinds: ClassVar[tuple[str, ...]]
    # Compression variant kinds that make sense for this family's network (beyond the
    # universal ones, see flywheel.stages.compress.variants).
    variants: ClassVar[tuple[str, ...]] = ("fp32", "int8", "pruned-fp32", "pruned-int8")
    # Params this task sets differently from the sections' defaults; a user's params file
    # holds only what differs from these.
    defaults: ClassVar[Mapping[str, Any]] = {}
    # Manifest columns written to the accepted manifest that the preprocess stage reads.
    accepted_columns: ClassVar[tuple[str, ...]] = ("path", "label")
    # Axes of ``input`` beyond the batch that vary per call (e.g. sequence length).
    dynamic_input_axes: ClassVar[dict[int, str]] = {}

    @classmethod
    def check_params(cls, params: Params) -> None:
        """Raise ``ValueError`` for settings this family cannot work with (default: none)."""
        del params

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
    def example_batch(self, spec: Any, batch: int = 1) -> np.ndarray:
        """A valid model input batch (numpy, no torch), for probes and warm-up."""

    def example_input(self, spec: Any, batch: int = 1) -> torch.Tensor:
        """:meth:`example_batch` as a tensor, for export tracing and pruning."""
        import torch

        return torch.from_numpy(np.ascontiguousarray(self.example_batch(spec, batch)))

    def train_augment(self, params: Params) -> Augment | None:
        """A batch transform applied to training batches only; None for no augmentation."""
        return None

    # inference
    @abstractmethod
    def encode(
        self, instances: Sequence[Any], spec: Any, limits: InstanceLimits | None = None
    ) -> np.ndarray:
        """Raw instances (as a client sends them) to one model input batch. Raises
        :class:`flywheel.core.errors.InputError` naming the bad instance. ``limits``: the
        instances came from a client (see :class:`InstanceLimits`)."""

    def check_instance(self, index: int, instance: Any) -> None:  # noqa: B027
        """Reject, by index, a client instance that :meth:`encode` would accept silently
        or choke on; raises :class:`~flywheel.core.errors.InputError`. Default: nothing
        beyond what encode checks."""

    def stored_form(
        self, instance: Any, spec: Any, limits: InstanceLimits | None = None
    ) -> StoredInstance:
        """How a client instance, already accepted by :meth:`encode`, is kept on disk
        (feedback): canonical JSON unless the family says; never the client's bytes."""
        del spec, limits
        return StoredInstance(canonical_json(instance), ".instance.json")

    def raw_split(self, params: Params, layout: Layout, split: str) -> tuple[list[Any], np.ndarray]:
        """The split's examples as raw instances (what a client would send) and targets.

        The gate measures every model from these, each through its own preprocessing spec,
        so models trained on different data (other statistics, another vocabulary) are
        compared on equal terms, the way the server will run them."""
        paths = json.loads(layout.split_index.read_text())[split]
        accepted = self.load_accepted(layout).set_index("path")
        rows = accepted.loc[paths]
        return self.instances_from_rows(params, layout, rows), self.targets_from_rows(params, rows)

    def load_accepted(self, layout: Layout) -> pd.DataFrame:
        import pandas as pd

        return pd.read_csv(
            layout.accepted_manifest,
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
        from flywheel.measure.metrics import softmax

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
