"""Data validation with Great Expectations: the suite, the stage and its report.

Exports resolve lazily: importing Great Expectations takes seconds, and code that only
reads a :class:`ValidationReport` (the CLI, the flow's summary) should not pay for it.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flywheel.validation.report import ValidationReport
    from flywheel.validation.run import validate_dataset
    from flywheel.validation.suite import build_suite, load_suite, open_context, save_suite

__all__ = [
    "ValidationReport",
    "build_suite",
    "load_suite",
    "open_context",
    "save_suite",
    "validate_dataset",
]

_HOMES = {
    "ValidationReport": "flywheel.validation.report",
    "validate_dataset": "flywheel.validation.run",
    "build_suite": "flywheel.validation.suite",
    "load_suite": "flywheel.validation.suite",
    "open_context": "flywheel.validation.suite",
    "save_suite": "flywheel.validation.suite",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_HOMES[name]), name)
