"""``flywheel worker``: a Prefect process worker on the team's pool, in this checkout.

The worker process replaces this one (exec), so Ctrl-C and SIGTERM reach Prefect's own
shutdown directly. Its flow runs inherit its environment: ``FLYWHEEL_CHECKOUT`` (where the
deployment's pull step cds), this checkout's code first on ``PYTHONPATH``, and heartbeats.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from flywheel.supervise.errors import ServerUnavailable
from flywheel.supervise.prefect_server import is_healthy, prefect_env
from flywheel.supervise.team import (
    default_worker_name,
    worker_checkout,
    worker_command,
    worker_env,
)


def run_worker(pool: str, name: str | None, limit: int, checkout: Path | None = None) -> None:
    checkout = worker_checkout(checkout)
    api = os.environ.get("PREFECT_API_URL")
    if not api:
        raise ServerUnavailable(
            "PREFECT_API_URL is not set: point it at the team's server (http://HOST:PORT/api)"
        )
    if not is_healthy(api):
        raise ServerUnavailable(f"PREFECT_API_URL={api} does not answer; start that server first")
    home = Path(os.environ.get("PREFECT_HOME") or checkout / ".prefect")
    env = worker_env(checkout, prefect_env(home, api))
    argv = worker_command(pool, name or default_worker_name(checkout), limit)
    print(f"flywheel worker: {argv[argv.index('--name') + 1]} on pool {pool} from {checkout}")
    sys.stdout.flush()
    os.chdir(checkout)
    os.execve(argv[0], argv, env)
