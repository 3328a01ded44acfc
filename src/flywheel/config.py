"""The one typed view of ``params.yaml``.

Every tunable the pipeline reads lives here, validated before anything runs: a bad value
is a :class:`~flywheel.errors.ConfigError` that names the key, never a crash halfway
through training. Models are frozen so no stage can mutate what another one reads.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from flywheel.errors import ConfigError

Fraction = Annotated[float, Field(gt=0.0, lt=1.0)]
PositiveInt = Annotated[int, Field(gt=0)]


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DataConfig(_Section):
    path: Path = Path("data")
    kind: Literal["image_folder"] = "image_folder"
    # Where feedback from the serving endpoint lands; never merged into ``path`` directly.
    feedback_inbox: Path = Path("feedback")


class ImageConfig(_Section):
    size: PositiveInt = 8
    mode: Literal["L", "RGB"] = "L"

    @property
    def channels(self) -> int:
        return 1 if self.mode == "L" else 3


class ValidateConfig(_Section):
    suite: str = "default"
    labels: tuple[str, ...] = ()
    allowed_modes: tuple[str, ...] = ("L",)
    allowed_formats: tuple[str, ...] = ("PNG",)
    min_width: PositiveInt = 1
    max_width: PositiveInt = 100_000
    min_height: PositiveInt = 1
    max_height: PositiveInt = 100_000
    min_rows_per_class: PositiveInt = 1

    @model_validator(mode="after")
    def _check(self) -> ValidateConfig:
        if not self.labels:
            raise ValueError("validate.labels must list at least one label")
        if len(set(self.labels)) != len(self.labels):
            raise ValueError("validate.labels contains duplicates")
        if self.min_width > self.max_width or self.min_height > self.max_height:
            raise ValueError("validate: min size is larger than max size")
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
    channels: tuple[PositiveInt, ...] = (32, 64)
    hidden: PositiveInt = 128
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.2


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


class CompressConfig(_Section):
    prune_ratio: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.5
    finetune_epochs: Annotated[int, Field(ge=0)] = 5
    calibration_samples: PositiveInt = 256
    per_channel: bool = True
    variants: tuple[Literal["fp32", "int8", "pruned-fp32", "pruned-int8", "dynamic-int8"], ...] = (
        "fp32",
        "int8",
        "pruned-int8",
    )

    @model_validator(mode="after")
    def _check(self) -> CompressConfig:
        if "fp32" not in self.variants:
            raise ValueError("compress.variants must include 'fp32' (the reference)")
        return self


class EvaluateConfig(_Section):
    latency_runs: PositiveInt = 200
    warmup_runs: PositiveInt = 20
    throughput_batch: PositiveInt = 64
    throughput_runs: PositiveInt = 20
    # Largest |onnx - torch| logit difference accepted by the export parity check.
    export_atol: Annotated[float, Field(gt=0.0)] = 1e-3
    intra_op_threads: Annotated[int, Field(ge=0)] = 0


class GateConfig(_Section):
    metric: Literal["accuracy"] = "accuracy"
    min_accuracy: Annotated[float, Field(ge=0.0, le=1.0)] = 0.9
    # A compressed variant may lose at most this much against fp32 to be chosen.
    max_drop: Annotated[float, Field(ge=0.0, le=1.0)] = 0.01
    # The candidate may fall at most this much below the model in production.
    tolerance: Annotated[float, Field(ge=0.0, le=1.0)] = 0.005
    # Candidate must not be slower than production by more than this factor.
    max_latency_ratio: Annotated[float, Field(gt=0.0)] = 1.5
    max_size_ratio: Annotated[float, Field(gt=0.0)] = 2.0


class ServeConfig(_Section):
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8008
    max_batch: PositiveInt = 64
    max_wait_ms: Annotated[float, Field(ge=0.0)] = 2.0
    max_body_bytes: PositiveInt = 8 * 1024 * 1024
    max_instances: PositiveInt = 256
    poll_interval_s: Annotated[float, Field(gt=0.0)] = 1.0


class ScheduleConfig(_Section):
    cron: str = ""
    timezone: str = "UTC"
    debounce_s: Annotated[float, Field(ge=0.0)] = 5.0


class PathsConfig(_Section):
    # Relative to the workspace (the folder holding dvc.yaml and this params file).
    artifacts: Path = Path("artifacts")
    registry: Path = Path("registry")
    expectations: Path = Path("expectations")
    # The library's source, so DVC re-runs a stage when the code behind it changes.
    code: Path = Path("src/flywheel")


class Params(_Section):
    task: Literal["image_classification"] = "image_classification"
    seed: int = 42
    data: DataConfig = DataConfig()
    paths: PathsConfig = PathsConfig()
    image: ImageConfig = ImageConfig()
    validate_: ValidateConfig = Field(alias="validate")
    split: SplitConfig = SplitConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    compress: CompressConfig = CompressConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    gate: GateConfig = GateConfig()
    serve: ServeConfig = ServeConfig()
    schedule: ScheduleConfig = ScheduleConfig()

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _check(self) -> Params:
        if self.image.mode not in self.validate_.allowed_modes:
            raise ValueError(
                f"image.mode {self.image.mode!r} is not in validate.allowed_modes "
                f"{list(self.validate_.allowed_modes)}"
            )
        return self

    @property
    def labels(self) -> tuple[str, ...]:
        return self.validate_.labels

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)

    def fingerprint(self) -> str:
        """A stable hash of every parameter, recorded on model cards."""
        blob = json.dumps(self.as_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()


def _format_error(source: str, err: ValidationError) -> str:
    lines = [f"invalid parameters in {source}:"]
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "<root>"
        lines.append(f"  - {key}: {e['msg']}")
    return "\n".join(lines)


def parse_params(raw: Any, source: str = "<params>") -> Params:
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{source}: expected a mapping at the top level, got {type(raw).__name__}"
        )
    if "validate" not in raw:
        raise ConfigError(f"invalid parameters in {source}:\n  - validate: section is required")
    try:
        return Params.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_format_error(source, err)) from None


def load_params(path: Path | str = "params.yaml") -> Params:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"params file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {err}") from None
    return parse_params(raw, str(path))
