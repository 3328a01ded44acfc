"""Watch the data folder and emit ``flywheel.data.changed`` when its content really changed.

Changes are debounced (an event goes out only after ``schedule.debounce_s`` seconds with no
further change), hashed the way DVC hashes the folder, and compared with the last hash
emitted and with the data the production model was trained on: a touch, a copy of the same
bytes, or DVC re-linking files changes no hash and emits nothing.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from watchdog.observers.api import BaseObserver

    from flywheel.core.workspace import Workspace

from flywheel.triggers.debounce import Debouncer
from flywheel.triggers.monitor import (
    ChangeFilter,
    ChangeMonitor,
    load_last_emitted,
    save_last_emitted,
)
from flywheel.triggers.observer import needs_polling, start_observer

log = logging.getLogger("flywheel.watcher")


def _production_hash(ws: Workspace) -> Callable[[], str | None]:
    from flywheel.core.errors import FlywheelError
    from flywheel.release.registry import Registry

    registry = Registry(ws.layout.registry)

    def read() -> str | None:
        try:
            card = registry.production()
        except FlywheelError as err:
            log.warning("cannot read production from %s: %s", registry.root, err)
            return None
        return card.data_hash if card else None

    return read


def _run_state(ws: Workspace) -> Callable[[str], str | None]:
    """How the deployment's latest run for a data hash ended (its state type, with
    CANCELLED_UNSTARTED for a run cancelled before it began); None when there is none."""
    from flywheel.pipeline.names import full_name
    from flywheel.supervise.api import PrefectApi
    from flywheel.triggers.events import events_api_url

    def ask(data_hash: str) -> str | None:
        with PrefectApi(events_api_url()) as api:
            deployment = api.deployment(full_name(ws))
            if deployment is None:
                return None
            for run in api.flow_runs(str(deployment["id"]), limit=50):
                if (run.get("parameters") or {}).get("data_hash") != data_hash:
                    continue
                kind = (run.get("state") or {}).get("type")
                if kind == "CANCELLED" and not run.get("start_time"):
                    return "CANCELLED_UNSTARTED"
                return str(kind) if kind else None
        return None

    return ask


def announce(
    ws: Workspace,
    data_hash: str,
    previous: str | None,
    details: dict[str, Any],
    api_url: str | None = None,
) -> str:
    """Emit ``flywheel.data.changed``; with a team remote the version goes there first,
    as the run may be on a worker that pulls it by hash. A failure here is the change
    monitor's retry, as a failed emit is."""
    from flywheel.triggers.events import emit_data_changed

    if ws.params.remote.enabled:
        from flywheel.pipeline.data_sharing import share_data

        share_data(ws, data_hash)
    return emit_data_changed(ws, data_hash, previous, details, api_url=api_url)


def _inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except OSError:
        return None


def watch(
    ws: Workspace, *, debounce_s: float, state_file: Path, poll: bool, stop: threading.Event
) -> None:
    """Run until ``stop`` is set."""
    # Imported now, not at the first change: Prefect's client takes a second or two to
    # import, which would otherwise add to the latency of the first event.
    import prefect.events.clients  # noqa: F401

    from flywheel.core.atomic import sweep_temp
    from flywheel.datasets.hashing import data_hash

    for leftover in sweep_temp(state_file.parent, recursive=False):
        log.info("removed %s, left by a killed writer", leftover.name)
    folder = ws.layout.data
    schedule = ws.params.schedule
    last, retries = load_last_emitted(state_file)
    monitor = ChangeMonitor(
        debouncer=Debouncer(debounce_s),
        changes=ChangeFilter(last, retries, schedule.max_crash_retries),
        hasher=lambda: data_hash(folder),
        production_hash=_production_hash(ws),
        emit=lambda h, prev, details: announce(ws, h, prev, details),
        on_emitted=lambda h, n: save_last_emitted(state_file, h, n),
        run_state=_run_state(ws),
    )
    poll = poll or needs_polling(folder.parent if not folder.exists() else folder)
    observer: BaseObserver | None = None
    watched: int | None = None
    # Start as if something changed: data edited while nothing watched it is news too.
    monitor.changed()
    next_recheck = time.monotonic() + schedule.recheck_s
    try:
        while not stop.is_set():
            if time.monotonic() >= next_recheck:
                monitor.recheck()
                next_recheck = time.monotonic() + schedule.recheck_s
            inode = _inode(folder)
            if inode != watched:
                # The folder appeared, or was replaced wholesale (rm -rf + mv): re-watch it.
                if observer is not None:
                    observer.stop()
                    observer = None
                if inode is not None:
                    observer = start_observer(folder, monitor.changed, poll=poll)
                    monitor.changed()
                watched = inode
            monitor.step()
            stop.wait(0.2)
    finally:
        if observer is not None:
            observer.stop()
            observer.join(timeout=5)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Emit flywheel.data.changed on data changes.")
    parser.add_argument("--params", default=None)
    parser.add_argument("--project", default=None)
    parser.add_argument("--poll", action="store_true", help="poll instead of inotify")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("FLYWHEEL_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("httpx", "httpcore", "websockets"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    from flywheel.core.workspace import open_workspace
    from flywheel.supervise.state import ServicePaths

    ws = open_workspace(args.params, Path(args.project) if args.project else None)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    watch(
        ws,
        debounce_s=ws.params.schedule.debounce_s,
        state_file=ServicePaths(ws.project).watcher_state(ws.name),
        poll=args.poll,
        stop=stop,
    )


if __name__ == "__main__":  # pragma: no cover
    main()
