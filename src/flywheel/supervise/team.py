"""Team mode: the pieces of ``flywheel up`` on separate machines, and ``flywheel worker``.

    server   the Prefect server (SQLite, or PostgreSQL with --database) and, with --pool,
             the retrain and monitor deployments registered on that work pool (flows/pool.py)
    worker   a Prefect process worker on the pool, running flow runs from this checkout
    watch    the data watcher (emits flywheel.data.changed)
    serve    the model server

Without ``--pool`` runs execute in ``up``'s own serve process, as on one machine.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterable
from pathlib import Path

from flywheel.core.errors import ConfigError

ROLES = ("server", "worker", "watch", "serve")
DEFAULT_POOL = "flywheel"
CHECKOUT_ENV = "FLYWHEEL_CHECKOUT"

# What each worker sets for the flow runs it starts (the user's own settings win):
# heartbeats at Prefect's minimum so a dead machine's run is noticed (flows/pool.py),
# and a short poll so a triggered run starts within seconds.
WORKER_DEFAULTS = {
    "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "30",
    "PREFECT_WORKER_QUERY_SECONDS": "2",
}


def parse_roles(values: Iterable[str] | None, pool: str | None) -> frozenset[str]:
    roles = frozenset(values or ROLES)
    unknown = sorted(roles - set(ROLES))
    if unknown:
        raise ConfigError(f"unknown --role {', '.join(unknown)}: choose from {', '.join(ROLES)}")
    if "worker" in roles and values and pool is None:
        raise ConfigError("--role worker needs a work pool: pass --pool NAME")
    return roles


def check_checkout(checkout: Path) -> Path:
    """A worker runs flows/pipeline.py from ``checkout``; refuse a folder without it, or
    every run it takes would crash on a missing file."""
    checkout = checkout.resolve()
    if not (checkout / "flows" / "pipeline.py").is_file() or not (checkout / "dvc.yaml").is_file():
        raise ConfigError(
            f"{checkout} is not a flywheel checkout (no flows/pipeline.py or dvc.yaml):"
            f" run `flywheel worker` in one, or set {CHECKOUT_ENV} to one"
        )
    return checkout


def worker_checkout(explicit: Path | None = None) -> Path:
    from flywheel.core.workspace import find_project

    given = explicit or (Path(os.environ[CHECKOUT_ENV]) if os.environ.get(CHECKOUT_ENV) else None)
    return check_checkout(given or find_project())


def default_worker_name(checkout: Path) -> str:
    # Prefect records only a pid for a run's process; the host in the name says where.
    return f"{socket.gethostname()}-{checkout.name}"


def worker_command(pool: str, name: str, limit: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "prefect",
        "worker",
        "start",
        "--pool",
        pool,
        "--type",
        "process",
        "--name",
        name,
        "--limit",
        str(limit),
    ]


def worker_env(checkout: Path, base: dict[str, str]) -> dict[str, str]:
    """The worker's environment, inherited by its flow runs: this checkout's code first
    on the path (a run must execute the checkout it cds into, not an installed copy)."""
    env = dict(base)
    for key, value in WORKER_DEFAULTS.items():
        env.setdefault(key, value)
    env[CHECKOUT_ENV] = str(checkout)
    path = [str(checkout / "src"), str(checkout)]
    env["PYTHONPATH"] = os.pathsep.join([*path, *filter(None, [env.get("PYTHONPATH")])])
    return env
