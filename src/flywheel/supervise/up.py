"""``flywheel up``: bring the long-running pieces up under one supervisor.

    server  (unless PREFECT_API_URL names one)  prefect server start, SQLite under .prefect/
    serve   python -m flows.retrain              registers `retrain` and runs its flow runs
    watcher python -m flywheel.triggers.watcher   turns data changes into events

The supervisor writes ``.flywheel/service/up.json`` (its pid, the API address, its
children) so ``down`` and ``status`` find it; ``ready`` turns true once the deployment
this ``up`` registered (with its trigger) is on the server.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from flywheel.core.workspace import Workspace, open_workspace
from flywheel.pipeline.names import full_name
from flywheel.supervise.api import PrefectApi, parse_time
from flywheel.supervise.auth import auth_string, check_model_server_bind, check_prefect_bind
from flywheel.supervise.errors import (
    AlreadyRunning,
    PortInUseError,
    ServerUnavailable,
    ServiceError,
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

DEFAULT_PORT = 4200


@dataclass(frozen=True)
class UpOptions:
    params: Path | None = None
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    poll: bool = False
    server_timeout: float = 120.0


class _Interrupted(Exception):
    """A stop signal arrived while the children were still starting."""


def resolve_server(options: UpOptions) -> tuple[str, bool]:
    """(API address, whether we start the server). Fails fast on a busy port."""
    external = os.environ.get("PREFECT_API_URL")
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
        env=server_env(home, host, port),
        cwd=ws.project,
        log=server_log,
        wait_ready=lambda proc: wait_healthy(api, options.server_timeout, proc, server_log),
        reap_group=True,
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
    serve_log = paths.log_file("serve")
    specs.append(
        ChildSpec(
            name="serve",
            argv=[sys.executable, "-m", "flows.retrain", *target],
            env=env,
            cwd=ws.project,
            log=serve_log,
            wait_ready=lambda proc: wait_deployment(
                api, full_name(ws), datetime.now(UTC), options.server_timeout, proc, serve_log
            ),
        )
    )
    # The HTTP endpoint serving the production model; it hot-swaps on every promotion.
    specs.append(
        ChildSpec(
            name="model-server",
            argv=[sys.executable, "-m", "flywheel.cli", "serve", "--params", str(ws.params_file)],
            env=env,
            cwd=ws.project,
            log=paths.log_file("model-server"),
        )
    )
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


def deployment_ready(api: PrefectApi, name: str, since: datetime) -> bool:
    """The deployment was (re)registered after ``since`` and its trigger exists."""
    deployment = api.deployment(name)
    if deployment is None:
        return False
    updated = parse_time(deployment.get("updated"))
    if updated is None or updated < since:
        return False
    return bool(api.automations_of(str(deployment["id"])))


def wait_deployment(
    api_url: str,
    name: str,
    since: datetime,
    timeout: float,
    proc: subprocess.Popen[bytes],
    log: Path,
) -> None:
    deadline = time.monotonic() + timeout
    with PrefectApi(api_url) as api:
        while time.monotonic() < deadline:
            with contextlib.suppress(ServiceError, OSError):
                if deployment_ready(api, name, since):
                    return
            if proc.poll() is not None:
                raise ServiceError(
                    f"the serve process exited with code {proc.returncode} before registering"
                    f" {name}; see {log}"
                )
            time.sleep(0.5)
    raise ServiceError(f"{name} was not registered within {timeout:.0f}s; see {log}")


def _crash_interrupted_runs(api_url: str, name: str, echo: Callable[[str], None]) -> None:
    """Runs the stopped serve process was executing died with it; say so on the server,
    or the UI would show them running forever and they would hold the concurrency slot."""
    with contextlib.suppress(ServiceError, OSError, httpx.HTTPError), PrefectApi(api_url) as api:
        deployment = api.deployment(name)
        if deployment is None:
            return
        for run in api.flow_runs(str(deployment["id"]), limit=20):
            if (run.get("state") or {}).get("type") in ("RUNNING", "PENDING"):
                api.crash(run["id"], "interrupted: `flywheel up` stopped while it ran")
                echo(f"  run {run['name']} was interrupted; marked Crashed")


def _initial_state(ws: Workspace, api: str, own_server: bool) -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "project": str(ws.project),
        "params_file": str(ws.params_file),
        "api_url": api,
        "ui_url": ui_url(api),
        "own_server": own_server,
        "deployment": full_name(ws),
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
    state = _initial_state(ws, api, own_server)
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
        echo(f"  Prefect API {api} ({'started here' if own_server else 'existing server'})")
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
        supervisor.stop(["watcher", "serve"])
        _crash_interrupted_runs(api, full_name(ws), echo)
        supervisor.stop()
        clear_state(paths, os.getpid())
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        echo("flywheel up: stopped")
