"""The Prefect server's database: SQLite under ``PREFECT_HOME`` by default, or PostgreSQL
named by ``flywheel up --database URL`` (or Prefect's own
``PREFECT_API_DATABASE_CONNECTION_URL``). Prefect migrates the schema itself on start
(``PREFECT_SERVER_DATABASE_MIGRATE_ON_START``, on by default), so pointing at an empty
database is the whole set-up."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit, urlunsplit

from flywheel.core.errors import ConfigError
from flywheel.supervise.errors import ServerUnavailable

# The two spellings Prefect 3 reads; the first wins when both are set.
DATABASE_ENV = ("PREFECT_SERVER_DATABASE_CONNECTION_URL", "PREFECT_API_DATABASE_CONNECTION_URL")
SCHEMES = ("postgresql+asyncpg", "sqlite+aiosqlite")
API_ENV = "PREFECT_API_URL"

# Concurrency-slot leases kept on disk under PREFECT_HOME rather than in the server's
# memory: with the in-memory default a server restart forgets every lease, the holders
# are refused renewal and their slots stay taken for good (a dataset would never run again).
LEASE_STORAGE = {
    "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": (
        "prefect.server.concurrency.lease_storage.filesystem"
    ),
}


def configured_database(explicit: str | None, env: dict[str, str] | None = None) -> str | None:
    """The database URL in force: ``explicit`` (``--database``), else the environment's.

    ``--database`` configures the server ``up`` starts; with ``PREFECT_API_URL`` set ``up``
    starts none and uses that one, so the option would be dropped without a word."""
    env = dict(os.environ) if env is None else env
    if explicit and env.get(API_ENV):
        raise ConfigError(
            f"--database conflicts with {API_ENV}={env[API_ENV]}: with it set `flywheel up`"
            f" starts no server and uses that one; unset {API_ENV} to start a server on"
            " this database, or drop --database"
        )
    url = explicit or next((env[k] for k in DATABASE_ENV if env.get(k)), None)
    if url:
        check_database_url(url)
    return url


def check_database_url(url: str) -> None:
    scheme = urlsplit(url).scheme
    if scheme not in SCHEMES:
        raise ConfigError(
            f"database URL {redact(url)!r} has scheme {scheme or 'none'!r}: use"
            " postgresql+asyncpg://USER:PASSWORD@HOST:PORT/DB (or sqlite+aiosqlite:///FILE)"
        )
    if scheme.startswith("postgresql") and not urlsplit(url).hostname:
        raise ConfigError(f"database URL {redact(url)!r} names no host: add @HOST:PORT")


def redact(url: str) -> str:
    """``url`` without its password, for logs, the state file and ``status``."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def kind(url: str | None) -> str:
    return "sqlite" if not url or url.startswith("sqlite") else "postgresql"


def check_reachable(url: str, timeout: float = 3.0) -> None:
    """Fail in one line when the PostgreSQL server does not accept connections, rather
    than after the Prefect server's start-up times out with a traceback in its log."""
    if kind(url) != "postgresql":
        return
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 5432
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as err:
        raise ServerUnavailable(
            f"PostgreSQL at {host}:{port} does not accept connections ({err.strerror or err});"
            " start it or fix --database"
        ) from err


def database_env(url: str | None) -> dict[str, str]:
    """What the server process needs in its environment for ``url`` (and the leases)."""
    env = dict(LEASE_STORAGE)
    if url:
        env[DATABASE_ENV[0]] = url
    return env
