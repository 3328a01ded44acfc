"""The ``flywheel.data.changed`` event: its name, the dataset resource it concerns, and a
delivery that is confirmed by the server (so the watcher never records an event as sent
when the server was down)."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from flywheel.service.errors import ServerUnavailable

if TYPE_CHECKING:
    from flywheel.workspace import Workspace

DATA_CHANGED = "flywheel.data.changed"


def dataset_name(ws: Workspace) -> str:
    """The dataset's identity: its folder relative to the project (``data``, ``mydata``)."""
    data = ws.layout.data.resolve()
    try:
        return data.relative_to(ws.project.resolve()).as_posix()
    except ValueError:
        return data.name


def resource_id(dataset: str) -> str:
    return f"flywheel.dataset.{dataset}"


def dataset_tag(dataset: str) -> str:
    return f"dataset:{dataset}"


def resource(ws: Workspace) -> dict[str, str]:
    name = dataset_name(ws)
    return {
        "prefect.resource.id": resource_id(name),
        "prefect.resource.name": name,
        "flywheel.workspace": ws.name,
        "flywheel.path": str(ws.layout.data.resolve()),
    }


def emit_data_changed(
    ws: Workspace, data_hash: str, previous_hash: str | None, details: dict[str, Any]
) -> str:
    """Send the event and wait for the server to confirm it; returns the event id."""
    if not os.environ.get("PREFECT_API_URL"):
        raise ServerUnavailable("PREFECT_API_URL is not set: no server to send events to")
    from prefect.events import Event
    from prefect.events.clients import PrefectEventsClient

    event = Event.model_validate(
        {
            "event": DATA_CHANGED,
            "resource": resource(ws),
            "occurred": datetime.now(UTC),
            "payload": {"data_hash": data_hash, "previous_hash": previous_hash, **details},
        }
    )

    async def send() -> None:
        # checkpoint_every=1: each emit waits for a websocket pong, i.e. the server has it.
        async with PrefectEventsClient(reconnection_attempts=2, checkpoint_every=1) as client:
            await client.emit(event)

    try:
        asyncio.run(send())
    except Exception as err:
        raise ServerUnavailable(f"could not deliver {DATA_CHANGED}: {err}") from err
    return str(event.id)
