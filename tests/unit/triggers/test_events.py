"""Where ``flywheel.data.changed`` goes: to the server the caller names (or the environment's
``PREFECT_API_URL`` at the time of the call), never to a server Prefect's settings context
happens to hold. Two small websocket servers speak Prefect's ``/events/in`` protocol."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from flywheel.core.workspace import Workspace, open_workspace
from flywheel.supervise.errors import ServerUnavailable
from flywheel.triggers.events import DATA_CHANGED, emit_data_changed, resource_id


@contextmanager
def events_server() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A Prefect-like ``/api/events/in`` websocket on a free loopback port, in a thread.
    Yields its API address and the events it received."""
    from websockets.asyncio.server import ServerConnection, serve

    received: list[dict[str, Any]] = []
    started = threading.Event()
    address: list[str] = []
    loop = asyncio.new_event_loop()
    stop = loop.create_future()

    async def handler(socket: ServerConnection) -> None:
        assert socket.request is not None and socket.request.path.endswith("/events/in")
        if socket.subprotocol == "prefect":
            assert json.loads(await socket.recv())["type"] == "auth"
            await socket.send(json.dumps({"type": "auth_success"}))
        async for message in socket:
            received.append(json.loads(message))

    def choose(_conn: ServerConnection, offered: Any) -> Any:
        return "prefect" if "prefect" in offered else None

    async def main() -> None:
        async with serve(handler, "127.0.0.1", 0, select_subprotocol=choose) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            address.append(f"http://127.0.0.1:{port}/api")
            started.set()
            await stop

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    assert started.wait(60), "the test events server did not start"
    try:
        yield address[0], received
    finally:
        loop.call_soon_threadsafe(stop.set_result, None)
        thread.join(10)
        loop.close()


def arrived(events: list[dict[str, Any]], count: int, timeout: float = 60.0) -> bool:
    """The client's delivery is confirmed by a pong; the handler may append a moment later."""
    deadline = time.monotonic() + timeout
    while len(events) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    return len(events) >= count


@pytest.fixture
def ws(tmp_path: Path, project_root: Path) -> Workspace:
    for name in ("dvc.yaml", "params.yaml"):
        (tmp_path / name).write_text((project_root / name).read_text())
    return open_workspace(None, tmp_path)


def test_the_event_goes_to_the_environments_server_not_prefects_settings_context(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What the full suite looks like to the service tests: a session-wide
    # prefect_test_harness holds PREFECT_API_URL in Prefect's settings context, and the
    # test names the `flywheel up` server in the environment. Before the fix the event
    # went to the harness's server and no run ever started on the real one.
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with events_server() as (stale, stale_events), events_server() as (real, real_events):
        monkeypatch.setenv("PREFECT_API_URL", real)
        with temporary_settings(updates={PREFECT_API_URL: stale}):
            event_id = emit_data_changed(ws, "b" * 32, "a" * 32, {"note": "test"})
        assert arrived(real_events, 1)
        time.sleep(0.2)  # time for a stray event to reach the other server too
    assert stale_events == []
    assert [e["id"] for e in real_events] == [event_id]
    (event,) = real_events
    assert event["event"] == DATA_CHANGED
    assert event["resource"]["prefect.resource.id"] == resource_id("data")
    assert event["payload"]["data_hash"] == "b" * 32
    assert event["payload"]["previous_hash"] == "a" * 32


def test_an_explicit_api_url_wins_over_the_environment(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    with events_server() as (env_url, env_events), events_server() as (named, named_events):
        monkeypatch.setenv("PREFECT_API_URL", env_url)
        event_id = emit_data_changed(ws, "c" * 32, None, {}, api_url=named)
        assert arrived(named_events, 1)
        time.sleep(0.2)
    assert env_events == []
    assert [e["id"] for e in named_events] == [event_id]


def test_no_server_named_is_a_clear_error(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    with pytest.raises(ServerUnavailable, match="PREFECT_API_URL is not set"):
        emit_data_changed(ws, "d" * 32, None, {})
