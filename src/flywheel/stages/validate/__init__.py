"""Data validation with Great Expectations: the suite, the stage and its report.

Exports resolve lazily: importing Great Expectations takes seconds, and code that only
reads a :class:`ValidationReport` (the CLI, the flow's summary) should not pay for it.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flywheel.stages.validate.report import ValidationReport
    from flywheel.stages.validate.run import validate_dataset
    from flywheel.stages.validate.suite import build_suite, load_suite, open_context, save_suite

__all__ = [
    "ValidationReport",
    "build_suite",
    "load_suite",
    "open_context",
    "save_suite",
    "validate_dataset",
]

_HOMES = {
    "ValidationReport": "flywheel.stages.validate.report",
    "validate_dataset": "flywheel.stages.validate.run",
    "build_suite": "flywheel.stages.validate.suite",
    "load_suite": "flywheel.stages.validate.suite",
    "open_context": "flywheel.stages.validate.suite",
    "save_suite": "flywheel.stages.validate.suite",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_HOMES[name]), name)
