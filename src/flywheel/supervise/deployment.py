"""Is the deployment ``up`` registered live on the server, and what to do with the runs
a stopped serve process leaves behind."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import httpx

from flywheel.supervise.api import PrefectApi, parse_time
from flywheel.supervise.errors import ServiceError


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


def crash_interrupted_runs(api_url: str, name: str, echo: Callable[[str], None]) -> None:
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
