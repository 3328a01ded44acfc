"""What every command shares: its options, the workspace, and how a failure is reported.

A failure is one line on stderr naming the problem (and, where the library knows it, the
fix), with the exit code for its kind; a traceback only with ``--verbose``.
"""

from __future__ import annotations

import functools
import logging
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from flywheel.core.errors import (
    ConfigError,
    DataError,
    DataValidationError,
    FlywheelError,
    GateRejected,
    InputError,
    TransientError,
)

if TYPE_CHECKING:
    from flywheel.core.workspace import Workspace

ParamsOpt = Annotated[
    Path | None, typer.Option("--params", "-p", help="Params file (default: ./params.yaml).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]

# Documented in the README: 2 bad params, 3 unusable data or validation failed, 4 gate
# rejected, 5 try again (another run holds the project, or the data changed during the
# run), 1 anything else.
EXIT_CODES: dict[type[FlywheelError], int] = {
    ConfigError: 2,
    DataError: 3,
    DataValidationError: 3,
    GateRejected: 4,
    TransientError: 5,
}
# Loggers through which Prefect reports a failed task or flow run, traceback attached; the
# command reports the same failure itself, in one line.
_RUN_LOGGERS = ("prefect.flow_runs", "prefect.task_runs")
VERBOSE = {"on": False}
F = TypeVar("F", bound=Callable[..., Any])


def exit_code(err: BaseException) -> int:
    return next((c for kind, c in EXIT_CODES.items() if isinstance(err, kind)), 1)


def one_line(message: str) -> str:
    """A message on one line: a library's (or a multi-problem) message joined with '; '."""
    return "; ".join(line.strip() for line in str(message).splitlines() if line.strip())


def fail(message: str, code: int) -> typer.Exit:
    typer.secho(f"error: {one_line(message)}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


class TerminalLogFilter(logging.Filter):
    """Without --verbose, no log line on the terminal carries a traceback, and Prefect's
    own report of a failed run (the command's one-line error says it) is not repeated.
    The Prefect server still gets every record: its handlers sit on Prefect's loggers."""

    def filter(self, record: logging.LogRecord) -> bool:
        if VERBOSE["on"]:
            return True
        if record.levelno >= logging.ERROR and record.name.startswith(_RUN_LOGGERS):
            return False
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True


def handled(fn: F) -> F:
    """Run a command; turn any failure into one line and an exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except (FlywheelError, InputError) as err:
            if VERBOSE["on"]:
                traceback.print_exc()
            raise fail(str(err), exit_code(err)) from None
        except Exception as err:
            if VERBOSE["on"]:
                traceback.print_exc()
                raise fail(f"{type(err).__name__}: {err}", 1) from None
            hint = "run again with --verbose for the traceback"
            raise fail(f"{type(err).__name__}: {err} ({hint})", 1) from None

    return wrapper  # type: ignore[return-value]


def workspace(params: Path | None) -> Workspace:
    from flywheel.core.workspace import open_workspace

    return open_workspace(params)


def echo(message: str) -> None:
    # Flushed at once: under --detach this goes to a log file someone may be tailing.
    typer.echo(message)
    sys.stdout.flush()
