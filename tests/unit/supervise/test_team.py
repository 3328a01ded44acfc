"""Roles of `flywheel up`, and what a worker is started with."""

from __future__ import annotations

from pathlib import Path

import pytest

from flywheel.core.errors import ConfigError
from flywheel.supervise.team import (
    CHECKOUT_ENV,
    ROLES,
    check_checkout,
    parse_roles,
    worker_command,
    worker_env,
)


def test_everything_by_default_and_only_known_roles() -> None:
    assert parse_roles(None, None) == frozenset(ROLES)
    assert parse_roles(["server", "watch"], None) == {"server", "watch"}
    with pytest.raises(ConfigError, match="unknown --role scheduler"):
        parse_roles(["scheduler"], None)
    with pytest.raises(ConfigError, match="--pool NAME"):
        parse_roles(["worker"], None)
    assert parse_roles(["worker"], "team") == {"worker"}


def test_a_worker_runs_its_own_checkout(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a flywheel checkout"):
        check_checkout(tmp_path)
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "pipeline.py").write_text("")
    (tmp_path / "dvc.yaml").write_text("")
    checkout = check_checkout(tmp_path)
    env = worker_env(checkout, {"PYTHONPATH": "/elsewhere", "PREFECT_WORKER_QUERY_SECONDS": "7"})
    assert env[CHECKOUT_ENV] == str(checkout)
    assert env["PYTHONPATH"].split(":") == [str(checkout / "src"), str(checkout), "/elsewhere"]
    assert env["PREFECT_WORKER_QUERY_SECONDS"] == "7"  # the user's setting wins
    assert env["PREFECT_FLOWS_HEARTBEAT_FREQUENCY"] == "30"
    argv = worker_command("team", "host-a", 1)
    assert argv[-8:] == ["--pool", "team", "--type", "process", "--name", "host-a", "--limit", "1"]
