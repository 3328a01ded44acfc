"""The pipeline's DVC stages, in order: each is one ``run(params, layout)`` function.

:data:`STAGES` is the one list of stages; ``dvc.yaml`` names the same stages with the same
command (``flywheel stage <name>``) and a test keeps the two in step. Stage modules are
imported only when their stage runs, so a stage loads only what it uses.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flywheel.core.config import Params
    from flywheel.core.layout import Layout

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stage:
    name: str
    module: str  # holds ``run(params, layout)``

    def function(self) -> Callable[[Params, Layout], Any]:
        fn: Callable[[Params, Layout], Any] = import_module(self.module).run
        return fn


STAGES: tuple[Stage, ...] = (
    Stage("validate", "flywheel.stages.validate.run"),
    Stage("preprocess", "flywheel.stages.preprocess"),
    Stage("train", "flywheel.stages.train"),
    Stage("export", "flywheel.stages.export"),
    Stage("compress", "flywheel.stages.compress.run"),
    Stage("evaluate", "flywheel.stages.evaluate.run"),
)
NAMES: tuple[str, ...] = tuple(s.name for s in STAGES)


def stage(name: str) -> Stage:
    try:
        return next(s for s in STAGES if s.name == name)
    except StopIteration:
        raise KeyError(f"unknown stage {name!r}; one of {', '.join(NAMES)}") from None


def run(name: str, params: Params, layout: Layout) -> Any:
    """The body of stage ``name`` (what ``flywheel stage <name>`` and the flow run)."""
    result = stage(name).function()(params, layout)
    log.debug("stage %s: %s", name, json.dumps(result, default=str)[:2000])
    return result
