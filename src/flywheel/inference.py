"""Predictions with a registered model: the same preprocessing as training, ONNX Runtime inside."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from flywheel.data.images import PreprocessingSpec, preprocess_file
from flywheel.errors import IntegrityError, RegistryError
from flywheel.ort_session import make_session
from flywheel.registry import ModelCard, Registry


@dataclass(frozen=True)
class Prediction:
    label: str
    probabilities: dict[str, float]

    def as_dict(self) -> dict[str, object]:
        return {"label": self.label, "probabilities": self.probabilities}


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return np.asarray(exp / exp.sum(axis=1, keepdims=True))


class Predictor:
    """One verified model version in one ONNX Runtime session."""

    def __init__(
        self, card: ModelCard, spec: PreprocessingSpec, model_bytes: bytes, threads: int = 0
    ) -> None:
        self.card = card
        self.spec = spec
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
        from hashlib import sha256

        if sha256(model_bytes).hexdigest() != card.sha256:
            raise IntegrityError(f"{version}: model changed while it was being loaded")
        return cls(card, PreprocessingSpec.load(registry.spec_path(version)), model_bytes, threads)

    @property
    def version(self) -> str:
        return self.card.version

    def logits(self, batch: np.ndarray) -> np.ndarray:
        return np.asarray(self.session.run(None, {self.input_name: batch.astype(np.float32)})[0])

    def predict_batch(self, batch: np.ndarray) -> list[Prediction]:
        probs = softmax(self.logits(batch))
        labels = self.spec.labels
        return [
            Prediction(
                label=labels[int(row.argmax())],
                probabilities={
                    label: round(float(p), 6) for label, p in zip(labels, row, strict=True)
                },
            )
            for row in probs
        ]

    def predict_files(self, paths: Sequence[Path]) -> list[Prediction]:
        if not paths:
            return []
        batch = np.stack([preprocess_file(Path(p), self.spec) for p in paths])
        return self.predict_batch(batch)
