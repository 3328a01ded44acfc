"""A local Prefect server: its command line, environment, address and health.

Prefect evaluates triggers and automations only on a running server (never in ephemeral
mode), so ``flywheel up`` starts one unless ``PREFECT_API_URL`` already names one.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from flywheel.supervise.auth import add_client_auth, add_server_auth, auth_string
from flywheel.supervise.errors import ServerUnavailable

# Quiet, offline defaults for every Prefect process we start; a user's own settings win.
PREFECT_DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "DVC_NO_ANALYTICS": "1",
    # A deployment run waiting for its concurrency slot retries after this many seconds
    # (Prefect's default, 30 s, would make a queued follow-up run sit idle for long).
    "PREFECT_SERVER_DEPLOYMENTS_CONCURRENCY_SLOT_WAIT_SECONDS": "5",
    # How often the serve process asks for runs a trigger created (default 10 s): most of
    # the latency between a data change and its run starting.
    "PREFECT_RUNNER_POLL_FREQUENCY": "1",
}


def api_url(host: str, port: int) -> str:
    return f"http://{host}:{port}/api"


def ui_url(api: str) -> str:
    return api.rstrip("/").removesuffix("/api")


def host_port(api: str) -> tuple[str, int]:
    parts = urlsplit(api)
    return parts.hostname or "127.0.0.1", parts.port or (443 if parts.scheme == "https" else 80)


def prefect_env(home: Path, api: str, base: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    for key, value in PREFECT_DEFAULTS.items():
        env.setdefault(key, value)
    env.setdefault("PREFECT_HOME", str(home))
    env["PREFECT_API_URL"] = api
    env["PYTHONUNBUFFERED"] = "1"
    return add_client_auth(env, auth_string(env))


def server_command(host: str, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "prefect",
        "server",
        "start",
        "--host",
        host,
        "--port",
        str(port),
        "--analytics-off",
        "--no-background",
    ]


def server_env(home: Path, host: str, port: int, database: str | None = None) -> dict[str, str]:
    """``database``: a PostgreSQL URL (see flywheel.supervise.database); None keeps
    whatever the environment says, SQLite under ``home`` when it says nothing."""
    from flywheel.supervise.database import DATABASE_ENV, database_env

    env = prefect_env(home, api_url(host, port))
    # The server process is the API, not a client of one.
    env.pop("PREFECT_API_URL", None)
    for key, value in database_env(database).items():
        if key in DATABASE_ENV:
            # Both spellings, so a stale one in the caller's shell cannot win.
            env.update(dict.fromkeys(DATABASE_ENV, value))
        else:
            env.setdefault(key, value)
    home.mkdir(parents=True, exist_ok=True)
    return add_server_auth(env, auth_string(env))


def is_healthy(api: str, timeout: float = 2.0) -> bool:
    try:
        response = httpx.get(f"{api.rstrip('/')}/health", timeout=timeout)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def wait_healthy(
    api: str, timeout: float, proc: subprocess.Popen[bytes] | None = None, log: Path | None = None
) -> None:
    """Block until the server answers /health; fail fast when its process exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if is_healthy(api):
            return
        if proc is not None and proc.poll() is not None:
            raise ServerUnavailable(
                f"the Prefect server exited with code {proc.returncode} before answering"
                f" at {api}" + (f"; see {log}" if log else "")
            )
        time.sleep(0.5)
    raise ServerUnavailable(f"no Prefect server answered at {api} within {timeout:.0f}s")
