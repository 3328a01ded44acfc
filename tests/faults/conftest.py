"""Shared by the fault tests: one real Prefect server per module (loopback, SQLite in a
temporary PREFECT_HOME) and the environment a CLI or service process needs to use it.
Each test module builds its own project; nothing here touches one."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.service_helpers import start_server, stop_group

from flywheel.core.faults import ENV
from flywheel.supervise.ports import free_port


@pytest.fixture(scope="module")
def prefect_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The environment of a process talking to this module's Prefect server, with no
    fault point armed."""
    home: Path = tmp_path_factory.mktemp("prefect-home")
    proc, api = start_server(home, free_port())
    env = {
        **{k: v for k, v in os.environ.items() if k != ENV},
        "PREFECT_API_URL": api,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }
    try:
        yield env
    finally:
        stop_group(proc)
