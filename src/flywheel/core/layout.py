"""Where each stage reads and writes, relative to a workspace root.

The DVC stages, the flow and the CLI all name files through :class:`Layout`, so a path is
spelled once. ``dvc.yaml`` spells the same paths for DVC; a unit test keeps the two in step.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flywheel.core.config import Params

# The file beside dvc.yaml holding the resolved params, under this key (see workspace).
RESOLVED_FILE = "params.resolved.yaml"
RESOLVED_KEY = "resolved"
# The export stage's variant, which every other variant is compared with.
REFERENCE_VARIANT = "fp32"


@dataclass(frozen=True)
class Layout:
    root: Path
    artifacts: Path
    registry: Path
    expectations: Path
    data: Path
    # Where the server keeps feedback (data.feedback_inbox); None in layouts built by hand.
    feedback_inbox: Path | None = None

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
            feedback_inbox=under_root(params.data.feedback_inbox),
        )

    @staticmethod
    def resolved_name() -> str:
        return RESOLVED_FILE

    @staticmethod
    def run_lock(project: Path) -> Path:
        """The project's one-writer lock (every workspace of the project shares it)."""
        return project / ".flywheel" / "run.lock"

    @property
    def resolved_params(self) -> Path:
        return self.root / RESOLVED_FILE

    # validate
    @property
    def validation_dir(self) -> Path:
        return self.artifacts / "validation"

    @property
    def accepted_manifest(self) -> Path:
        """The rows that passed validation: what preprocess reads."""
        return self.validation_dir / "manifest.csv"

    @property
    def quarantine(self) -> Path:
        return self.validation_dir / "quarantine.csv"

    @property
    def validation_report(self) -> Path:
        return self.validation_dir / "report.json"

    # preprocess
    @property
    def preprocessed_dir(self) -> Path:
        return self.artifacts / "preprocessed"

    def split_file(self, split: str) -> Path:
        return self.preprocessed_dir / f"{split}.npz"

    @property
    def preprocessing_spec(self) -> Path:
        return self.preprocessed_dir / "preprocessing.json"

    @property
    def split_index(self) -> Path:
        """Which example went to which split (paths), for audits and the gate's test set."""
        return self.preprocessed_dir / "splits.json"

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
        folder = self.onnx_dir if variant == REFERENCE_VARIANT else self.compressed_dir
        return folder / f"{variant}.onnx"

    def recipe_file(self, variant: str) -> Path:
        return self.compressed_dir / f"{variant}.recipe.json"

    # evaluate
    @property
    def evaluation_report(self) -> Path:
        return self.artifacts / "metrics" / "evaluation.json"

    # monitor
    @property
    def prediction_log(self) -> Path:
        """The server's log of what it answered (see flywheel.monitor.prediction_log)."""
        return self.root / ".flywheel" / "predictions"

    @property
    def shared_prediction_log(self) -> Path:
        """Chunks of the team remote's prediction log, downloaded once each (immutable)."""
        return self.root / ".flywheel" / "predictions-shared"

    @property
    def monitor_report(self) -> Path:
        """The monitor flow's latest drift report, which /metrics exports."""
        return self.root / ".flywheel" / "monitor" / "report.json"
