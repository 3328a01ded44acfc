"""Typed failures. Each carries the evidence a caller (CLI, flow, server) needs to explain it."""

from __future__ import annotations

from typing import Any


class FlywheelError(Exception):
    """Base class: every failure the pipeline reports on purpose."""


class InputError(FlywheelError, ValueError):
    """A client's (or a command line's) input cannot become a model tensor; the message
    names the instance and why."""


class ConfigError(FlywheelError):
    """``params.yaml`` (or another params file) is missing or holds a bad value."""


class DataError(FlywheelError):
    """The data cannot be used as it is: absent, not a dataset, or corrupt bookkeeping
    (``data.dvc``); the message says what was found and what to do."""


class DataNotFoundError(DataError, FileNotFoundError):
    """Nothing at ``data.path``; still a :class:`FileNotFoundError` for callers that ask."""


class DataValidationError(FlywheelError):
    """The dataset failed its expectation suite; ``report`` names each failed expectation."""

    def __init__(self, report: Any) -> None:
        self.report = report
        failed = ", ".join(report.failed_expectations()) or "unknown"
        super().__init__(
            f"data validation failed for suite {report.suite!r}: {failed}"
            f" ({report.rejected_rows} row(s) quarantined in {report.quarantine_path})"
        )


class ExportMismatchError(FlywheelError):
    """The ONNX graph disagrees with the PyTorch model beyond the stated tolerance."""

    def __init__(self, max_abs_diff: float, atol: float) -> None:
        self.max_abs_diff = max_abs_diff
        self.atol = atol
        super().__init__(
            f"ONNX export disagrees with PyTorch: max |diff| {max_abs_diff:.3g} > {atol:.3g}"
        )


class GateRejected(FlywheelError):
    """The candidate did not earn promotion; ``result`` is the full :class:`GateResult`."""

    def __init__(self, result: Any) -> None:
        self.result = result
        super().__init__("gate rejected the candidate: " + "; ".join(result.reasons))


class RegistryError(FlywheelError):
    """The model registry is missing, inconsistent or asked for something it does not hold."""


class IntegrityError(RegistryError):
    """A model file does not match the sha256 recorded on its card: it is never served."""


class TransientError(FlywheelError):
    """Worth trying again: the same run may succeed a moment later, with nothing fixed."""


class DataChangedError(TransientError):
    """The data changed while a run used it: what was validated is not what would train
    or ship, so the run stops (the watcher announces the new content anyway)."""


class ProjectBusy(TransientError):
    """Another run of the same project holds it (runs never overlap) and did not finish
    within ``schedule.wait_for_run_s``; the message names that run."""


class RemoteError(FlywheelError):
    """The team's object store (``remote.url``) refused or lacks what was asked for; the
    message names the URL and the operation."""


class RemoteUnavailable(RemoteError, TransientError):
    """The object store did not answer: nothing was changed there by the failed step, and
    the same step succeeds once the store is reachable again."""


class AliasMoved(RegistryError):
    """The production alias on the remote moved (another machine promoted or rolled back)
    between this deploy reading it and writing it: this write lost the compare-and-swap."""
