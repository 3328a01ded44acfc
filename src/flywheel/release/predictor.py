"""Predictions with a registered model: the family's own preprocessing, ONNX Runtime inside."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from typing import Any

import numpy as np

from flywheel.core.errors import IntegrityError, RegistryError
from flywheel.core.ort import make_session
from flywheel.families import get_family
from flywheel.families.base import Family
from flywheel.measure.metrics import softmax
from flywheel.release.registry import ModelCard, Registry

__all__ = ["Prediction", "Predictor", "softmax"]


@dataclass(frozen=True)
class Prediction:
    """One answer: ``{"label", "probabilities"}`` for classifiers, ``{"value"}`` for regressors."""

    fields: dict[str, Any]

    @property
    def label(self) -> str | None:
        label = self.fields.get("label")
        return None if label is None else str(label)

    @property
    def probabilities(self) -> dict[str, float]:
        return dict(self.fields.get("probabilities", {}))

    def as_dict(self) -> dict[str, Any]:
        return dict(self.fields)


class Predictor:
    """One verified model version in one ONNX Runtime session."""

    def __init__(self, card: ModelCard, spec: Any, model_bytes: bytes, threads: int = 0) -> None:
        self.card = card
        self.spec = spec
        self.family: Family = get_family(card.task)
        self.session = make_session(model_bytes, intra_op_threads=threads)
        self.input_name = self.session.get_inputs()[0].name

    @classmethod
    def from_registry(
        cls, registry: Registry, version: str | None = None, threads: int = 0
    ) -> Predictor:
        version = version or registry.production_version()
        if version is None:
            raise RegistryError(f"no production model in {registry.root}; run the pipeline first")
        card = registry.verify(version)
        # Read once and check again: the bytes the session loads are the bytes we verified.
        model_bytes = registry.model_path(version).read_bytes()
        if sha256(model_bytes).hexdigest() != card.sha256:
            raise IntegrityError(f"{version}: model changed while it was being loaded")
        spec = get_family(card.task).load_spec(registry.spec_path(version))
        return cls(card, spec, model_bytes, threads)

    @property
    def version(self) -> str:
        return self.card.version

    def logits(self, batch: np.ndarray) -> np.ndarray:
        return np.asarray(self.session.run(None, {self.input_name: batch})[0])

    def encode(self, instances: Sequence[Any]) -> np.ndarray:
        return self.family.encode(instances, self.spec)

    def predict_batch(self, batch: np.ndarray) -> list[Prediction]:
        return [Prediction(p) for p in self.family.postprocess(self.logits(batch), self.spec)]

    def predict_instances(self, instances: Sequence[Any]) -> list[Prediction]:
        return self.predict_batch(self.encode(instances)) if instances else []

    def predict_files(self, paths: Sequence[Path]) -> list[Prediction]:
        return self.predict_instances(self.family.read_inputs(paths))
