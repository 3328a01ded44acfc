"""The server's database URL: which one is in force, how it is checked, what is shown."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from flywheel.core.errors import ConfigError
from flywheel.supervise.database import (
    DATABASE_ENV,
    LEASE_STORAGE,
    check_reachable,
    configured_database,
    kind,
    redact,
)
from flywheel.supervise.errors import ServerUnavailable
from flywheel.supervise.ports import free_port
from flywheel.supervise.prefect_server import server_env

PG = "postgresql+asyncpg://prefect:s3cret@db.example:5433/prefect"


def test_explicit_url_wins_over_the_environment() -> None:
    env = {"PREFECT_API_DATABASE_CONNECTION_URL": "sqlite+aiosqlite:///x.db"}
    assert configured_database(PG, env) == PG
    assert configured_database(None, env) == "sqlite+aiosqlite:///x.db"
    assert configured_database(None, {}) is None


def test_database_with_an_external_server_is_refused_with_the_fix() -> None:
    env = {"PREFECT_API_URL": "http://team:4200/api"}
    with pytest.raises(ConfigError, match="--database conflicts with PREFECT_API_URL=") as err:
        configured_database(PG, env)
    assert "unset PREFECT_API_URL" in str(err.value) and "drop --database" in str(err.value)
    assert "s3cret" not in str(err.value)
    # Only the option conflicts: a database from the environment may be meant for a server
    # started elsewhere with the same settings.
    env["PREFECT_API_DATABASE_CONNECTION_URL"] = PG
    assert configured_database(None, env) == PG


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgres://u:p@h/db", "scheme 'postgres'"),
        ("mysql://u@h/db", "postgresql+asyncpg://USER:PASSWORD@HOST:PORT/DB"),
        ("postgresql+asyncpg:///db", "names no host"),
    ],
)
def test_bad_urls_are_named_with_the_fix(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)) as err:
        configured_database(url, {})
    assert "s3cret" not in str(err.value)


def test_the_password_never_shows() -> None:
    assert redact(PG) == "postgresql+asyncpg://prefect:***@db.example:5433/prefect"
    assert redact("sqlite+aiosqlite:///x.db") == "sqlite+aiosqlite:///x.db"
    assert kind(PG) == "postgresql" and kind(None) == "sqlite"


def test_server_env_sets_both_spellings_and_keeps_leases_on_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PREFECT_SERVER_DATABASE_CONNECTION_URL", "sqlite+aiosqlite:///stale.db")
    env = server_env(tmp_path, "127.0.0.1", 4200, PG)
    assert all(env[key] == PG for key in DATABASE_ENV)
    for key, value in LEASE_STORAGE.items():
        assert env[key] == value
    monkeypatch.delenv("PREFECT_SERVER_DATABASE_CONNECTION_URL")
    plain = server_env(tmp_path, "127.0.0.1", 4200)
    assert not any(key in plain for key in DATABASE_ENV)  # SQLite under PREFECT_HOME


def test_an_unreachable_postgres_is_one_line() -> None:
    port = free_port()
    with pytest.raises(ServerUnavailable, match=f"PostgreSQL at 127.0.0.1:{port} does not"):
        check_reachable(f"postgresql+asyncpg://u:p@127.0.0.1:{port}/db", timeout=1)
    check_reachable("sqlite+aiosqlite:///x.db")  # nothing to reach
