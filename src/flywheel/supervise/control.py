"""Running ``up`` in the background (``--detach``) and stopping it (``down``)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from flywheel.core.workspace import open_workspace
from flywheel.supervise.auth import check_model_server_bind
from flywheel.supervise.database import DATABASE_ENV
from flywheel.supervise.errors import AlreadyRunning, NotRunning, ServiceError
from flywheel.supervise.prefect_server import host_port
from flywheel.supervise.state import ServicePaths, pid_alive, read_state, running_state
from flywheel.supervise.supervisor import terminate_group
from flywheel.supervise.team import ROLES
from flywheel.supervise.up import UpOptions, resolve_server


def _up_argv(options: UpOptions) -> list[str]:
    argv = [sys.executable, "-m", "flywheel.cli", "up", "--host", options.host]
    argv += ["--port", str(options.port), "--server-timeout", str(options.server_timeout)]
    if options.params is not None:
        argv += ["--params", str(options.params.resolve())]
    if options.poll:
        argv.append("--poll")
    # --database travels in the environment (see detach): a password in argv is public.
    if options.pool:
        argv += ["--pool", options.pool]
    if options.worker_name:
        argv += ["--worker-name", options.worker_name]
    if options.roles != frozenset(ROLES):
        for role in sorted(options.roles):
            argv += ["--role", role]
    return argv


def detach(options: UpOptions, timeout: float = 300.0) -> dict[str, Any]:
    """Start ``up`` in the background; return its state once its deployment is live."""
    ws = open_workspace(options.params)
    paths = ServicePaths(ws.project)
    existing = running_state(paths)
    if existing is not None:
        raise AlreadyRunning(
            f"flywheel up is already running for {ws.project} (pid {existing['pid']});"
            " run `flywheel down` first"
        )
    # A busy port, a dead PREFECT_API_URL or an unauthenticated public bind fails here, in
    # the caller's terminal; a port picked here (--port 0) is handed down so both agree.
    check_model_server_bind(ws.params.serve.host)
    api, own_server = resolve_server(options)
    if own_server:
        options = replace(options, port=host_port(api)[1])
    log = paths.log_file("up")
    log.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if options.database:
        env.update(dict.fromkeys(DATABASE_ENV, options.database))
    with log.open("ab") as out:
        proc = subprocess.Popen(
            _up_argv(options),
            env=env,
            cwd=ws.project,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = read_state(paths)
        if state is not None and state.get("pid") == proc.pid and state.get("ready"):
            return state
        if proc.poll() is not None:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
            raise ServiceError(f"flywheel up exited with code {proc.returncode}:\n{tail}")
        time.sleep(0.5)
    terminate_group(proc.pid, 15.0, proc)
    raise ServiceError(f"flywheel up was not ready within {timeout:.0f}s; see {log}")


def _matches(pid: int, marker: str) -> bool:
    import psutil

    try:
        return marker in " ".join(psutil.Process(pid).cmdline())
    except psutil.Error:
        return False


# What each child's command line holds: a pid reused by another process is never killed.
_MARKERS = {
    "server": "prefect",
    "serve": "flows.retrain",
    "register": "flows.pool",
    "worker": "prefect worker",
    "model-server": "flywheel.cli serve",
    "watcher": "flywheel.triggers.watcher",
}


def run_down(project: Path, timeout: float = 60.0) -> dict[str, Any]:
    """Stop the ``up`` of ``project``; returns the state it had."""
    paths = ServicePaths(project)
    state = read_state(paths)
    if state is None:
        raise NotRunning(f"flywheel up is not running for {project}")
    pid = int(state["pid"])
    if pid_alive(pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
    # Children of a supervisor that died without cleaning up (kill -9): stop them too,
    # after checking each pid still runs what we started (pids get reused).
    for name, child in (state.get("children") or {}).items():
        child_pid = child.get("pid")
        if child_pid and pid_alive(child_pid) and _matches(child_pid, _MARKERS.get(name, "")):
            terminate_group(child_pid, 15.0)
    with contextlib.suppress(FileNotFoundError):
        paths.state_file.unlink()
    return state
