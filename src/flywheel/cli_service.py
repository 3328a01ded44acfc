"""``flywheel up`` / ``down`` / ``status``: event-driven and scheduled operation on a real
Prefect server. Registered onto the main app by :func:`register`; every heavy import
happens inside the command that needs it, so ``flywheel --help`` stays fast."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from flywheel.errors import ConfigError, FlywheelError

ParamsOpt = Annotated[
    Path | None, typer.Option("--params", "-p", help="Params file (default: ./params.yaml).")
]


def _fail(err: FlywheelError) -> typer.Exit:
    typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
    return typer.Exit(2 if isinstance(err, ConfigError) else 1)


def _echo(message: str) -> None:
    # Flushed at once: under --detach this goes to a log file someone may be tailing.
    typer.echo(message)
    sys.stdout.flush()


def up(
    params: ParamsOpt = None,
    host: Annotated[str, typer.Option(help="Bind address of the Prefect server started here.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="Its port; 0 picks a free one.")] = 4200,
    detach: Annotated[
        bool, typer.Option("--detach", "-d", help="Run in the background; stop with `down`.")
    ] = False,
    poll: Annotated[
        bool, typer.Option("--poll", help="Poll the data folder instead of using inotify.")
    ] = False,
    server_timeout: Annotated[
        float, typer.Option(help="Seconds to wait for the Prefect server to answer.")
    ] = 120.0,
) -> None:
    """Start a Prefect server, the `retrain` deployment and the data watcher; supervise them."""
    from flywheel.service.control import detach as start_detached
    from flywheel.service.up import UpOptions, run_up

    options = UpOptions(
        params=params, host=host, port=port, poll=poll, server_timeout=server_timeout
    )
    try:
        if detach:
            state = start_detached(options)
            typer.echo(f"flywheel up running in the background (pid {state['pid']})")
            typer.echo(f"  Prefect UI  {state['ui_url']}")
            typer.echo("  stop it with `flywheel down`")
        else:
            run_up(options, echo=_echo)
    except FlywheelError as err:
        raise _fail(err) from None


def down(
    timeout: Annotated[float, typer.Option(help="Seconds to wait before killing.")] = 60.0,
) -> None:
    """Stop a `flywheel up` running for this project (started with --detach or not)."""
    from flywheel.service.control import run_down
    from flywheel.workspace import find_project

    try:
        state = run_down(find_project(), timeout)
    except FlywheelError as err:
        raise _fail(err) from None
    typer.echo(f"stopped flywheel up (pid {state['pid']})")


def status(
    params: ParamsOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    runs: Annotated[int, typer.Option(help="How many recent runs to show.")] = 5,
) -> None:
    """Server, deployment and schedule, the last runs with their states, the production model."""
    from flywheel.service.status import collect, render
    from flywheel.workspace import open_workspace

    try:
        report = collect(open_workspace(params), runs)
    except FlywheelError as err:
        raise _fail(err) from None
    typer.echo(json.dumps(report, indent=2, default=str) if as_json else render(report))


def register(app: typer.Typer) -> None:
    app.command()(up)
    app.command()(down)
    app.command()(status)
