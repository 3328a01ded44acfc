"""The sections of the params file: one frozen, validated model per section.

Each field's default is the task-independent default; a family may override some of them
for its task (``Family.defaults``), and a user's params file holds only what differs from
those. :mod:`flywheel.core.config` assembles the sections into :class:`Params`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Fraction = Annotated[float, Field(gt=0.0, lt=1.0)]
PositiveInt = Annotated[int, Field(gt=0)]


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


ColumnRef = str | int  # a header name, or a 0-based position for files without a header


class DataConfig(_Section):
    path: Path = Path("data")
    # image_folder: <path>/<label>/*.png|jpg; text_folder: <path>/<label>/*.txt;
    # table: a CSV/TSV/Parquet file (or a folder of them) read with the options below.
    kind: Literal["image_folder", "text_folder", "table"] = "image_folder"
    format: Literal["auto", "csv", "tsv", "parquet"] = "auto"
    # Which files under a folder to read (glob, e.g. "*_labelled.txt"; "*/*.txt" leaves out
    # files directly under the root). Default: every .csv/.tsv/.parquet file of a table
    # folder, every *.txt of a text folder, every file of an image folder.
    pattern: str | None = None
    header: bool = True
    delimiter: str | None = None  # None: "," for csv, tab for tsv
    quoting: Literal["minimal", "none"] = "minimal"
    encoding: str = "utf-8"
    text_column: ColumnRef = "text"
    title_column: ColumnRef | None = None  # joined before the text when set
    label_column: ColumnRef = "label"
    target: ColumnRef = "target"  # tabular regression
    numeric_columns: tuple[ColumnRef, ...] = ()
    categorical_columns: tuple[ColumnRef, ...] = ()
    # Where feedback from the serving endpoint lands; never merged into ``path`` directly.
    feedback_inbox: Path = Path("feedback")


class ImageConfig(_Section):
    size: PositiveInt = 8
    mode: Literal["L", "RGB"] = "L"
    # Training-split augmentation only; evaluation and serving never augment.
    augment: bool = False

    @property
    def channels(self) -> int:
        return 1 if self.mode == "L" else 3


class TextConfig(_Section):
    max_len: PositiveInt = 128  # tokens per example after truncation
    vocab_size: PositiveInt = 20_000
    min_freq: PositiveInt = 2
    lowercase: bool = True
    # Share of real tokens replaced by <unk> in training batches: with a few thousand
    # training texts a CNN otherwise memorises rare words instead of using the rest.
    word_dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.2


class TransformerConfig(_Section):
    max_len: PositiveInt = 64
    # Layers of the encoder kept frozen while fine-tuning (0 = train all).
    freeze_layers: Annotated[int, Field(ge=0)] = 0


class ColumnRule(_Section):
    min: float | None = None
    max: float | None = None
    categories: tuple[str, ...] | None = None
    max_null_share: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0


class ValidateConfig(_Section):
    suite: str = "default"
    labels: tuple[str, ...] = ()
    # Row-level expectations pass when at least this share of rows passes; failing rows
    # are quarantined either way. 1.0 means any bad row fails the run.
    mostly: Annotated[float, Field(gt=0.0, le=1.0)] = 1.0
    min_rows: PositiveInt = 1
    min_rows_per_class: PositiveInt = 1
    # images
    allowed_modes: tuple[str, ...] = ("L",)
    allowed_formats: tuple[str, ...] = ("PNG",)
    min_width: PositiveInt = 1
    max_width: PositiveInt = 100_000
    min_height: PositiveInt = 1
    max_height: PositiveInt = 100_000
    # text
    min_chars: PositiveInt = 1
    max_chars: PositiveInt = 100_000
    # tables: per-column rules, keyed by column name
    columns: dict[str, ColumnRule] = {}

    @model_validator(mode="after")
    def _check(self) -> ValidateConfig:
        if len(set(self.labels)) != len(self.labels):
            raise ValueError("validate.labels contains duplicates")
        if self.min_width > self.max_width or self.min_height > self.max_height:
            raise ValueError("validate: min size is larger than max size")
        if self.min_chars > self.max_chars:
            raise ValueError("validate: min_chars is larger than max_chars")
        return self


class SplitConfig(_Section):
    val: Fraction = 0.15
    test: Fraction = 0.15

    @model_validator(mode="after")
    def _check(self) -> SplitConfig:
        if self.val + self.test >= 0.9:
            raise ValueError("split.val + split.test must leave at least 10% for training")
        return self


class ModelConfig(_Section):
    # CNN / text-CNN convolution widths; MLP and head hidden sizes (empty: a linear model).
    channels: tuple[PositiveInt, ...] = (32, 64)
    hidden: tuple[PositiveInt, ...] = (128,)
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.2
    embedding_dim: PositiveInt = 64
    kernel_size: PositiveInt = 5


class TrainConfig(_Section):
    max_epochs: PositiveInt = 30
    batch_size: PositiveInt = 64
    lr: Annotated[float, Field(gt=0.0, le=1.0)] = 2e-3
    weight_decay: Annotated[float, Field(ge=0.0)] = 1e-4
    patience: PositiveInt = 5
    # "auto" = bf16-mixed on a GPU that supports it, 16-mixed on other GPUs, 32 on CPU.
    precision: Literal["auto", "32", "16-mixed", "bf16-mixed"] = "auto"
    accelerator: Literal["auto", "cpu", "gpu"] = "auto"
    num_workers: Annotated[int, Field(ge=0)] = 0
    # Limits batches per epoch; 0 means "all". Tests use it to keep training tiny.
    limit_batches: Annotated[int, Field(ge=0)] = 0
    devices: PositiveInt = 1
    num_nodes: PositiveInt = 1
    strategy: Literal["auto", "ddp"] = "auto"


PruneRatio = Annotated[float, Field(ge=0.0, lt=1.0)]


class CompressConfig(_Section):
    # Every ratio listed is tried, each with its own fine-tune; the first one's variants are
    # named plainly (pruned-fp32), the others carry their ratio (pruned-fp32@0.75).
    prune_ratios: Annotated[tuple[PruneRatio, ...], Field(min_length=1)] = (0.5,)
    finetune_epochs: Annotated[int, Field(ge=0)] = 5
    calibration_samples: PositiveInt = 512
    per_channel: bool = True
    # Kinds from flywheel.stages.compress.variants.KINDS.
    variants: tuple[str, ...] = ("fp32", "int8", "pruned-int8")

    @model_validator(mode="after")
    def _check(self) -> CompressConfig:
        # Deferred: the variant table lives with the compress stage that builds them.
        from flywheel.stages.compress.variants import KINDS, unknown_kinds

        unknown = unknown_kinds(self.variants)
        if unknown:
            raise ValueError(f"compress.variants: unknown kinds {unknown}; one of {list(KINDS)}")
        if "fp32" not in self.variants:
            raise ValueError("compress.variants must include 'fp32' (the reference)")
        if len(set(self.prune_ratios)) != len(self.prune_ratios):
            raise ValueError("compress.prune_ratios contains duplicates")
        return self

    @property
    def ratios(self) -> tuple[float, ...]:
        return self.prune_ratios


class EvaluateConfig(_Section):
    latency_runs: PositiveInt = 300
    warmup_runs: PositiveInt = 30
    throughput_batch: PositiveInt = 64
    throughput_runs: PositiveInt = 30
    # Largest |onnx - torch| logit difference accepted by the export parity check.
    export_atol: Annotated[float, Field(gt=0.0)] = 1e-3
    # Threads for ONNX Runtime and eager PyTorch alike, so they are timed on equal terms;
    # 0 lets each runtime choose.
    intra_op_threads: Annotated[int, Field(ge=0)] = 1
    # Interleaved timing rounds: each takes 1/rounds of the runs, every variant once a round.
    rounds: PositiveInt = 5
    # A variant "gives a speed-up" only at this share of fp32's latency or less; closer
    # than that is within the noise of one run on a small shared machine.
    speedup_threshold: Annotated[float, Field(gt=0.0, le=1.0)] = 0.9
    # An ONNX Runtime optimisation level replaces the default only when faster by more
    # than this share (a smaller gap is timing noise).
    level_tolerance: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.03
    # Two variants' batch-1 p50s closer than their measured noise (the spread of the
    # per-round medians), and never closer than this share, are a tie: the smaller file
    # wins. A few rounds understate the noise of a shared machine, hence the floor.
    latency_noise_floor: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.05


MetricName = Literal["accuracy", "r2", "rmse", "mae"]
LOWER_IS_BETTER: frozenset[str] = frozenset({"rmse", "mae"})


class GateConfig(_Section):
    # The metric every comparison uses; its direction follows from its name.
    metric: MetricName = "accuracy"
    # Absolute floor (or ceiling, for rmse/mae) on the metric; None: no absolute bound.
    min_accuracy: Annotated[float, Field(ge=0.0, le=1.0)] | None = 0.9
    min_r2: float | None = None
    max_rmse: Annotated[float, Field(gt=0.0)] | None = None
    max_mae: Annotated[float, Field(gt=0.0)] | None = None
    # A compressed variant may be at most this much worse than fp32 (metric units).
    max_drop: Annotated[float, Field(ge=0.0)] = 0.01
    # The candidate may be at most this much worse than the model in production.
    tolerance: Annotated[float, Field(ge=0.0)] = 0.005
    # Candidate must not be slower than production by more than this factor.
    max_latency_ratio: Annotated[float, Field(gt=0.0)] = 1.5
    max_size_ratio: Annotated[float, Field(gt=0.0)] = 2.0
    # Test rows the candidate must answer (finite, right shape) before and after promotion.
    probe_rows: PositiveInt = 8


class PathsConfig(_Section):
    # Relative to the workspace (the folder holding dvc.yaml and this params file).
    artifacts: Path = Path("artifacts")
    registry: Path = Path("registry")
    expectations: Path = Path("expectations")
    # The library's source, so DVC re-runs a stage when the code behind it changes.
    code: Path = Path("src/flywheel")
