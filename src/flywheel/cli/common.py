"""What every command shares: its options, the workspace, and how a failure is reported.

A failure is one line on stderr naming the problem (and, where the library knows it, the
fix), with the exit code for its kind; a traceback only with ``--verbose``.
"""

from __future__ import annotations

import functools
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from flywheel.core.errors import (
    ConfigError,
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

# Documented in the README: 2 bad params, 3 data validation failed, 4 gate rejected,
# 5 try again (another run holds the project, or the data changed during the run).
EXIT_CODES: dict[type[FlywheelError], int] = {
    ConfigError: 2,
    DataValidationError: 3,
    GateRejected: 4,
    TransientError: 5,
}
VERBOSE = {"on": False}
F = TypeVar("F", bound=Callable[..., Any])


def exit_code(err: BaseException) -> int:
    return next((c for kind, c in EXIT_CODES.items() if isinstance(err, kind)), 1)


def fail(message: str, code: int) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


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
