"""The one typed view of a params file: task defaults filled in, every value validated.

A user's params file holds only what differs from its task's defaults. Resolution lays the
file over the task's family defaults (``Family.defaults``), which lie over each section's
own defaults (:mod:`flywheel.core.sections`); the result is validated before anything runs:
a bad value is a :class:`~flywheel.core.errors.ConfigError` that names the key, never a
crash halfway through training. The resolved params are what DVC tracks and what a model
card records. Models are frozen so no stage can mutate what another one reads.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ConfigDict, Field, ValidationError, model_validator

from flywheel.core.errors import ConfigError
from flywheel.core.loop_sections import FeedbackConfig, MonitorConfig
from flywheel.core.remote_section import RemoteConfig
from flywheel.core.sections import (
    LOWER_IS_BETTER,
    CompressConfig,
    DataConfig,
    EvaluateConfig,
    GateConfig,
    ImageConfig,
    ModelConfig,
    PathsConfig,
    SplitConfig,
    TextConfig,
    TrainConfig,
    TransformerConfig,
    ValidateConfig,
    _Section,
)
from flywheel.core.service_sections import ScheduleConfig, ServeConfig

DEFAULT_TASK = "image_classification"


class Params(_Section):
    task: str = DEFAULT_TASK
    seed: int = 42
    data: DataConfig = DataConfig()
    paths: PathsConfig = PathsConfig()
    image: ImageConfig = ImageConfig()
    text: TextConfig = TextConfig()
    transformer: TransformerConfig = TransformerConfig()
    validate_: ValidateConfig = Field(alias="validate")
    split: SplitConfig = SplitConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    compress: CompressConfig = CompressConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    gate: GateConfig = GateConfig()
    serve: ServeConfig = ServeConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    feedback: FeedbackConfig = FeedbackConfig()
    monitor: MonitorConfig = MonitorConfig()
    remote: RemoteConfig = RemoteConfig()

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _check(self) -> Params:
        family = _family(self.task)
        if self.data.kind not in family.data_kinds:
            raise ValueError(
                f"data.kind {self.data.kind!r} does not fit task {self.task!r}; "
                f"use one of {list(family.data_kinds)}"
            )
        regression = family.objective == "regression"
        if regression == (self.gate.metric == "accuracy"):
            raise ValueError(
                f"gate.metric {self.gate.metric!r} does not fit task {self.task!r}"
                + (" (use r2, rmse or mae)" if regression else " (use accuracy)")
            )
        if not regression and len(self.validate_.labels) < 2:
            raise ValueError("validate.labels must list at least two labels for a classifier")
        family.check_params(self)
        return self

    @property
    def labels(self) -> tuple[str, ...]:
        return () if self.is_regression else self.validate_.labels

    @property
    def is_regression(self) -> bool:
        return _family(self.task).objective == "regression"

    @property
    def higher_is_better(self) -> bool:
        return self.gate.metric not in LOWER_IS_BETTER

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)

    def fingerprint(self) -> str:
        """A stable hash of every parameter, recorded on model cards."""
        blob = json.dumps(self.as_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()


def _family(task: str) -> Any:
    # Deferred: the families declare their tasks and import this module themselves.
    from flywheel.families import family_class

    return family_class(task)


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` laid over ``base``, section by section (mappings merge, the rest replaces)."""
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


# Pydantic's wording for these is about Python objects; a params file's reader needs the fix.
_FRIENDLY = {
    "extra_forbidden": "unknown key (`flywheel params` lists every key)",
    "missing": "required",
}


def _format_error(source: str, err: ValidationError) -> str:
    """Every problem on one line: ``invalid parameters in F: key: why; key: why``."""
    problems = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"])
        message = _FRIENDLY.get(e["type"], str(e["msg"]).removeprefix("Value error, "))
        message = " ".join(message.split())
        # Checks across sections (the model's own validator) name their keys themselves.
        problems.append(f"{key}: {message}" if key else message)
    return f"invalid parameters in {source}: " + "; ".join(problems)


def task_defaults(task: str) -> dict[str, Any]:
    """What the task's family sets differently from the sections' own defaults."""
    try:
        return copy.deepcopy(dict(_family(task).defaults))
    except ValueError as err:
        raise ConfigError(f"task: {err}") from None


def resolve(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The user's mapping laid over its task's defaults (not yet validated)."""
    task = raw.get("task", DEFAULT_TASK)
    if not isinstance(task, str):
        raise ConfigError(f"task must be a string naming a model family, got {task!r}")
    return merge(task_defaults(task), raw)


def parse_params(raw: Any, source: str = "<params>") -> Params:
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{source}: expected a mapping at the top level, got {type(raw).__name__}"
        )
    if "validate" not in raw:
        raise ConfigError(
            f"invalid parameters in {source}: validate: section is required "
            "(at least validate.suite and, for a classifier, validate.labels)"
        )
    try:
        return Params.model_validate(resolve(raw))
    except ValidationError as err:
        raise ConfigError(_format_error(source, err)) from None


def read_yaml(path: Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"params file not found: {path}")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
        what = getattr(err, "problem", None) or "cannot be parsed"
        raise ConfigError(f"{path} is not valid YAML{at}: {what}; fix that line") from None


def load_params(path: Path | str = "params.yaml") -> Params:
    return parse_params(read_yaml(Path(path)), str(path))
