"""A Prefect server started the way `flywheel up` starts it, with an auth string: the API
refuses requests without it, and children given `flywheel up`'s environment (a Prefect
client like the serve process, an events client like the watcher) get through."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.integration.service_helpers import start_server, stop_group

from flywheel.supervise.api import PrefectApi
from flywheel.supervise.auth import CLIENT_AUTH_ENV, SERVER_AUTH_ENV
from flywheel.supervise.errors import ServerUnavailable
from flywheel.supervise.ports import free_port
from flywheel.supervise.prefect_server import prefect_env

pytestmark = [pytest.mark.slow]

AUTH = "flywheel:s3cret-for-tests"

# What the serve process and the watcher do first: read the API, and send an event whose
# delivery the server confirms.
_CHILD = """
import asyncio, sys
from prefect.client.orchestration import get_client
from prefect.events import Event
from prefect.events.clients import PrefectEventsClient

api = sys.argv[1]
with get_client(sync_client=True) as client:
    client.read_flows(limit=1)

async def send():
    event = Event(event="flywheel.auth.test", resource={"prefect.resource.id": "flywheel.t"})
    async with PrefectEventsClient(api_url=api, reconnection_attempts=0, checkpoint_every=1) as c:
        await c.emit(event)

asyncio.run(send())
print("ok")
"""


@pytest.fixture(scope="module")
def locked_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    home = tmp_path_factory.mktemp("prefect-home")
    mp = pytest.MonkeyPatch()
    mp.setenv(SERVER_AUTH_ENV, AUTH)
    mp.delenv(CLIENT_AUTH_ENV, raising=False)
    try:
        proc, api = start_server(home, free_port())
    except BaseException:
        mp.undo()
        raise
    try:
        yield api, home
    finally:
        stop_group(proc)
        mp.undo()


def test_the_api_refuses_requests_without_the_auth_string(
    locked_server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    api, _ = locked_server
    assert httpx.get(f"{api}/health").status_code == 200  # probes stay open
    anonymous = httpx.post(f"{api}/flows/filter", json={"limit": 1})
    assert anonymous.status_code == 401
    wrong = httpx.post(f"{api}/flows/filter", json={"limit": 1}, auth=("flywheel", "guess"))
    assert wrong.status_code == 401
    monkeypatch.delenv(SERVER_AUTH_ENV)
    with PrefectApi(api) as client, pytest.raises(ServerUnavailable, match=CLIENT_AUTH_ENV):
        client.deployment("flywheel-pipeline/retrain")
    monkeypatch.setenv(CLIENT_AUTH_ENV, AUTH)
    with PrefectApi(api) as client:
        assert client.deployment("flywheel-pipeline/retrain") is None  # answered: not found


def test_children_with_up_s_environment_get_through(
    locked_server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    api, home = locked_server
    # `flywheel up` holds the server's setting; every child gets the client one from it.
    env = prefect_env(home, api)
    assert env[CLIENT_AUTH_ENV] == AUTH
    child = subprocess.run(
        [sys.executable, "-c", _CHILD, api], env=env, capture_output=True, text=True, timeout=120
    )
    assert child.returncode == 0 and child.stdout.strip().endswith("ok"), child.stderr[-2000:]
    without = {k: v for k, v in env.items() if k not in (CLIENT_AUTH_ENV, SERVER_AUTH_ENV)}
    refused = subprocess.run(
        [sys.executable, "-c", _CHILD, api],
        env=without,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode != 0
