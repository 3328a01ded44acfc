"""``flywheel up``: bring the long-running pieces up under one supervisor.

    server  (unless PREFECT_API_URL names one)  prefect server start, SQLite under .prefect/
            or the PostgreSQL database given with --database
    serve   python -m flows.retrain              registers `retrain` and runs its flow runs
            (with --pool: `register`, python -m flows.pool, puts it on the work pool, and
            `worker`, a Prefect worker on that pool, runs them; see supervise/team.py)
    watcher python -m flywheel.triggers.watcher   turns data changes into events

The supervisor writes ``.flywheel/service/up.json`` (its pid, the API address, its
children) so ``down`` and ``status`` find it; ``ready`` turns true once the deployment
this ``up`` registered (with its trigger) is on the server.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flywheel.core.workspace import Workspace, open_workspace
from flywheel.pipeline.names import full_name
from flywheel.supervise.auth import auth_string, check_model_server_bind, check_prefect_bind
from flywheel.supervise.database import check_reachable, kind
from flywheel.supervise.deployment import crash_interrupted_runs, wait_deployment
from flywheel.supervise.errors import (
    AlreadyRunning,
    PortInUseError,
    ServerUnavailable,
)
from flywheel.supervise.ports import free_port, port_in_use
from flywheel.supervise.prefect_server import (
    api_url,
    host_port,
    is_healthy,
    prefect_env,
    server_command,
    server_env,
    ui_url,
    wait_healthy,
)
from flywheel.supervise.state import (
    ServicePaths,
    clear_state,
    running_state,
    write_state,
)
from flywheel.supervise.supervisor import ChildSpec, Supervisor
from flywheel.supervise.team import (
    ROLES,
    default_worker_name,
    worker_command,
    worker_env,
)

DEFAULT_PORT = 4200


@dataclass(frozen=True)
class UpOptions:
    params: Path | None = None
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    poll: bool = False
    server_timeout: float = 120.0
    database: str | None = None
    pool: str | None = None
    roles: frozenset[str] = frozenset(ROLES)
    worker_name: str | None = None


class _Interrupted(Exception):
    """A stop signal arrived while the children were still starting."""


def resolve_server(options: UpOptions) -> tuple[str, bool]:
    """(API address, whether we start the server). Fails fast on a busy port."""
    external = os.environ.get("PREFECT_API_URL")
    if not external and "server" not in options.roles:
        raise ServerUnavailable(
            "PREFECT_API_URL is not set: point it at the team's server"
            " (http://HOST:PORT/api) or add --role server"
        )
    if external:
        if not is_healthy(external):
            raise ServerUnavailable(
                f"PREFECT_API_URL={external} does not answer; start that server or unset"
                " PREFECT_API_URL so `flywheel up` starts one"
            )
        return external, False
    check_prefect_bind(options.host, auth_string())
    port = options.port or free_port(options.host)
    if port_in_use(options.host, port):
        api = api_url(options.host, port)
        hint = (
            f"a Prefect server already answers there; use it with PREFECT_API_URL={api}"
            " or pass --port to start another"
            if is_healthy(api)
            else "pass --port to pick another"
        )
        raise PortInUseError(options.host, port, hint)
    return api_url(options.host, port), True


def _server_spec(
    ws: Workspace, paths: ServicePaths, api: str, home: Path, options: UpOptions
) -> ChildSpec:
    host, port = host_port(api)
    server_log = paths.log_file("server")
    return ChildSpec(
        name="server",
        argv=server_command(host, port),
        env=server_env(home, host, port, options.database),
        cwd=ws.project,
        log=server_log,
        wait_ready=lambda proc: wait_healthy(api, options.server_timeout, proc, server_log),
        reap_group=True,
    )


def _deployment_spec(
    ws: Workspace,
    paths: ServicePaths,
    api: str,
    env: dict[str, str],
    target: list[str],
    options: UpOptions,
) -> ChildSpec:
    """Without a pool the serve process runs the flow runs itself; with one it only
    registers the deployment there and the workers run them."""
    name, module = ("register", "flows.pool") if options.pool else ("serve", "flows.retrain")
    pool = ["--pool", options.pool] if options.pool else []
    log = paths.log_file(name)
    return ChildSpec(
        name=name,
        argv=[sys.executable, "-m", module, *target, *pool],
        env=env,
        cwd=ws.project,
        log=log,
        wait_ready=lambda proc: wait_deployment(
            api, full_name(ws), datetime.now(UTC), options.server_timeout, proc, log
        ),
    )


def child_specs(
    ws: Workspace, paths: ServicePaths, api: str, own_server: bool, options: UpOptions
) -> list[ChildSpec]:
    """In start order: the server, then the serve process (ready once its deployment and
    trigger are on the server), then the watcher, so no event can precede its trigger."""
    home = Path(os.environ.get("PREFECT_HOME") or paths.prefect_home)
    env = prefect_env(home, api)
    target = ["--params", str(ws.params_file), "--project", str(ws.project)]
    specs = []
    if own_server:
        specs.append(_server_spec(ws, paths, api, home, options))
    if "server" in options.roles:
        specs.append(_deployment_spec(ws, paths, api, env, target, options))
    if "serve" in options.roles:
        # The HTTP endpoint serving the production model; it hot-swaps on every promotion.
        argv = [sys.executable, "-m", "flywheel.cli", "serve", "--params", str(ws.params_file)]
        specs.append(
            ChildSpec("model-server", argv, env, ws.project, paths.log_file("model-server"))
        )
    if options.pool and "worker" in options.roles:
        name = options.worker_name or default_worker_name(ws.project)
        specs.append(
            ChildSpec(
                "worker",
                worker_command(options.pool, name, 1),
                worker_env(ws.project, env),
                ws.project,
                paths.log_file("worker"),
            )
        )
    if "watch" not in options.roles:
        return specs
    specs.append(
        ChildSpec(
            name="watcher",
            argv=[
                sys.executable,
                "-m",
                "flywheel.triggers.watcher",
                *target,
                *(["--poll"] if options.poll else []),
            ],
            env=env,
            cwd=ws.project,
            log=paths.log_file("watcher"),
        )
    )
    return specs


def _initial_state(ws: Workspace, api: str, own_server: bool, options: UpOptions) -> dict[str, Any]:
    database_kind = kind(options.database) if own_server else None
    return {
        "pid": os.getpid(),
        "project": str(ws.project),
        "params_file": str(ws.params_file),
        "api_url": api,
        "ui_url": ui_url(api),
        "own_server": own_server,
        "deployment": full_name(ws),
        "pool": options.pool,
        "roles": sorted(options.roles),
        "database": database_kind,
        "started_at": datetime.now(UTC).isoformat(),
        "ready": False,
    }


def run_up(options: UpOptions, echo: Callable[[str], None] = print) -> None:
    """Run in the foreground until SIGINT/SIGTERM; stop every child on the way out."""
    ws = open_workspace(options.params)
    paths = ServicePaths(ws.project)
    existing = running_state(paths)
    if existing is not None:
        raise AlreadyRunning(
            f"flywheel up is already running for {ws.project} (pid {existing['pid']},"
            f" {existing.get('ui_url')}); run `flywheel down` first"
        )
    check_model_server_bind(ws.params.serve.host)
    api, own_server = resolve_server(options)
    if own_server and options.database:
        check_reachable(options.database)
    state = _initial_state(ws, api, own_server, options)
    supervisor: Supervisor

    def save() -> None:
        state["children"] = supervisor.snapshot()
        write_state(paths, state)

    supervisor = Supervisor(
        child_specs(ws, paths, api, own_server, options), echo=echo, on_change=save
    )
    stop = threading.Event()
    starting = True

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()
        if starting:
            raise _Interrupted(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        echo(f"flywheel up: {ws.project} ({ws.params_file.name})")
        where = f"started here, {state['database']}" if own_server else "existing server"
        echo(f"  Prefect API {api} ({where})")
        supervisor.start()
        starting = False
        state["ready"] = True
        save()
        echo(f"  Prefect UI  {ui_url(api)}")
        echo(f"  deployment  {full_name(ws)}; watching {ws.layout.data}")
        echo(f"  logs        {paths.logs}/")
        supervisor.run(stop)
    except _Interrupted:
        pass
    finally:
        starting = False
        echo("flywheel up: stopping")
        supervisor.stop(["watcher", "serve", "register"])
        if options.pool is None:  # a worker's runs are not ours to crash
            crash_interrupted_runs(api, full_name(ws), echo)
        supervisor.stop()
        clear_state(paths, os.getpid())
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        echo("flywheel up: stopped")
