"""Where each stage reads and writes, relative to a workspace root.

The DVC stages, the flow and the CLI all name files through :class:`Layout`, so a path is
spelled once. ``dvc.yaml`` spells the same paths for DVC; a unit test keeps the two in step.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from flywheel.config import Params

VARIANT_FILES = {
    "fp32": "fp32.onnx",
    "int8": "int8.onnx",
    "dynamic-int8": "dynamic-int8.onnx",
    "pruned-fp32": "pruned-fp32.onnx",
    "pruned-int8": "pruned-int8.onnx",
}


@dataclass(frozen=True)
class Layout:
    root: Path
    artifacts: Path
    registry: Path
    expectations: Path
    data: Path

    @classmethod
    def from_params(cls, params: Params, root: Path | str = ".") -> Layout:
        root = Path(root)

        def under_root(p: Path) -> Path:
            return p if p.is_absolute() else root / p

        return cls(
            root=root,
            artifacts=under_root(params.paths.artifacts),
            registry=under_root(params.paths.registry),
            expectations=under_root(params.paths.expectations),
            data=under_root(params.data.path),
        )

    # validate
    @property
    def validation_dir(self) -> Path:
        return self.artifacts / "validation"

    # preprocess
    @property
    def preprocessed_dir(self) -> Path:
        return self.artifacts / "preprocessed"

    def split_file(self, split: str) -> Path:
        return self.preprocessed_dir / f"{split}.npz"

    @property
    def preprocessing_spec(self) -> Path:
        return self.preprocessed_dir / "preprocessing.json"

    # train
    @property
    def model_dir(self) -> Path:
        return self.artifacts / "model"

    @property
    def checkpoint(self) -> Path:
        return self.model_dir / "model.ckpt"

    @property
    def train_metrics(self) -> Path:
        return self.artifacts / "metrics" / "train.json"

    @property
    def train_curve(self) -> Path:
        return self.artifacts / "plots" / "train_curve.csv"

    # export / compress
    @property
    def onnx_dir(self) -> Path:
        return self.artifacts / "onnx"

    @property
    def export_report(self) -> Path:
        return self.onnx_dir / "export.json"

    @property
    def compressed_dir(self) -> Path:
        return self.artifacts / "compressed"

    def variant_file(self, variant: str) -> Path:
        # fp32 is the export stage's output; every other variant is the compress stage's.
        folder = self.onnx_dir if variant == "fp32" else self.compressed_dir
        # Variants the compression search names per setting (pruned-int8@0.75) use their name.
        return folder / VARIANT_FILES.get(variant, f"{variant}.onnx")

    def recipe_file(self, variant: str) -> Path:
        return self.compressed_dir / f"{variant}.recipe.json"

    # evaluate
    @property
    def evaluation_report(self) -> Path:
        return self.artifacts / "metrics" / "evaluation.json"
