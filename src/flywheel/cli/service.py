"""``flywheel up`` / ``down`` / ``status``: event-driven and scheduled operation on a real
Prefect server."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from flywheel.cli.common import ParamsOpt, echo, handled


@handled
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
    database: Annotated[
        str | None,
        typer.Option(
            help="The server's database, postgresql+asyncpg://USER:PASSWORD@HOST:PORT/DB"
            " (default: PREFECT_API_DATABASE_CONNECTION_URL, else SQLite under .prefect/).",
        ),
    ] = None,
    pool: Annotated[
        str | None,
        typer.Option(
            help="Team mode: register `retrain` and `monitor` on this work pool; workers run them."
        ),
    ] = None,
    role: Annotated[
        list[str] | None,
        typer.Option(help="Start only these pieces: server, worker, watch, serve (repeatable)."),
    ] = None,
    worker_name: Annotated[
        str | None, typer.Option(help="Name of the worker started here (default: host-folder).")
    ] = None,
) -> None:
    """Start a Prefect server, the `retrain` deployment and the data watcher; supervise them."""
    from flywheel.supervise.control import detach as start_detached
    from flywheel.supervise.database import configured_database
    from flywheel.supervise.team import parse_roles
    from flywheel.supervise.up import UpOptions, run_up

    options = UpOptions(
        params=params,
        host=host,
        port=port,
        poll=poll,
        server_timeout=server_timeout,
        database=configured_database(database),
        pool=pool,
        roles=parse_roles(role, pool),
        worker_name=worker_name,
    )
    if detach:
        state = start_detached(options)
        typer.echo(f"flywheel up running in the background (pid {state['pid']})")
        typer.echo(f"  Prefect UI  {state['ui_url']}")
        typer.echo("  stop it with `flywheel down`")
    else:
        run_up(options, echo=echo)


@handled
def down(
    timeout: Annotated[float, typer.Option(help="Seconds to wait before killing.")] = 60.0,
) -> None:
    """Stop a `flywheel up` running for this project (started with --detach or not)."""
    from flywheel.core.workspace import find_project
    from flywheel.supervise.control import run_down

    state = run_down(find_project(), timeout)
    typer.echo(f"stopped flywheel up (pid {state['pid']})")


@handled
def status(
    params: ParamsOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    runs: Annotated[int, typer.Option(help="How many recent runs to show.")] = 5,
) -> None:
    """Server, deployment and schedule, the last runs with their states, the production model."""
    from flywheel.core.workspace import open_workspace
    from flywheel.supervise.status import collect, render

    report = collect(open_workspace(params), runs)
    typer.echo(json.dumps(report, indent=2, default=str) if as_json else render(report))


@handled
def worker(
    pool: Annotated[str, typer.Option(help="The work pool `flywheel up --pool` registered.")] = (
        "flywheel"
    ),
    name: Annotated[
        str | None, typer.Option(help="Worker name shown in the UI (default: host-folder).")
    ] = None,
    limit: Annotated[int, typer.Option(help="Flow runs this worker runs at once.")] = 1,
) -> None:
    """Run flow runs of the team's server (PREFECT_API_URL) from this checkout
    (or FLYWHEEL_CHECKOUT) until stopped."""
    from flywheel.supervise.worker import run_worker

    run_worker(pool, name, limit)


def register(app: typer.Typer) -> None:
    app.command()(up)
    app.command()(worker)
    app.command()(down)
    app.command()(status)
