"""The ``flywheel.data.changed`` event: its name, the dataset resource it concerns, and a
delivery that is confirmed by the server (so the watcher never records an event as sent
when the server was down).

The event goes to the server named by ``api_url`` or, failing that, by ``PREFECT_API_URL``
in the environment *now*, never to whatever Prefect's settings context holds: Prefect reads
its settings once, at import, and a test harness or flow-run context overrides them, so a
client built without an address can confirm delivery to a different server."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from flywheel.pipeline.names import dataset_name
from flywheel.supervise.errors import ServerUnavailable

if TYPE_CHECKING:
    from flywheel.core.workspace import Workspace

DATA_CHANGED = "flywheel.data.changed"
DRIFT_DETECTED = "flywheel.drift.detected"


def resource_id(dataset: str) -> str:
    return f"flywheel.dataset.{dataset}"


def resource(ws: Workspace) -> dict[str, str]:
    name = dataset_name(ws)
    return {
        "prefect.resource.id": resource_id(name),
        "prefect.resource.name": name,
        "flywheel.workspace": ws.name,
        "flywheel.path": str(ws.layout.data.resolve()),
    }


def events_api_url(api_url: str | None = None) -> str:
    """The API the event goes to: ``api_url``, else ``PREFECT_API_URL`` from the environment."""
    url = api_url or os.environ.get("PREFECT_API_URL")
    if not url:
        raise ServerUnavailable("PREFECT_API_URL is not set: no server to send events to")
    return url


def emit_data_changed(
    ws: Workspace,
    data_hash: str,
    previous_hash: str | None,
    details: dict[str, Any],
    *,
    api_url: str | None = None,
) -> str:
    """Send the event to ``api_url`` (default: ``PREFECT_API_URL`` from the environment)
    and wait for that server to confirm it; returns the event id."""
    payload = {"data_hash": data_hash, "previous_hash": previous_hash, **details}
    return emit_confirmed(DATA_CHANGED, resource(ws), payload, api_url=api_url)


def emit_drift_detected(
    ws: Workspace, model_version: str, payload: dict[str, Any], *, api_url: str | None = None
) -> str:
    """``flywheel.drift.detected`` on the dataset, naming the production model version."""
    where = {**resource(ws), "flywheel.model_version": model_version}
    return emit_confirmed(DRIFT_DETECTED, where, payload, api_url=api_url)


def emit_confirmed(
    name: str, where: dict[str, str], payload: dict[str, Any], *, api_url: str | None = None
) -> str:
    url = events_api_url(api_url)
    from prefect.events import Event
    from prefect.events.clients import PrefectEventsClient

    event = Event.model_validate(
        {"event": name, "resource": where, "occurred": datetime.now(UTC), "payload": payload}
    )

    async def send() -> None:
        # checkpoint_every=1: each emit waits for a websocket pong, i.e. the server has it.
        # The address is passed explicitly: without it the client takes PREFECT_API_URL
        # from Prefect's settings context, which may name another server (see above).
        async with PrefectEventsClient(
            api_url=url, reconnection_attempts=2, checkpoint_every=1
        ) as client:
            await client.emit(event)

    try:
        asyncio.run(send())
    except Exception as err:
        raise ServerUnavailable(f"could not deliver {name} to {url}: {err}") from err
    return str(event.id)
