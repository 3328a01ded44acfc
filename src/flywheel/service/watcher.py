"""Watch the data folder and emit ``flywheel.data.changed`` when its content really changed.

Changes are debounced (an event goes out only after ``schedule.debounce_s`` seconds with no
further change), hashed the way DVC hashes the folder, and compared with the last hash
emitted and with the data the production model was trained on: a touch, a copy of the same
bytes, or DVC re-linking files changes no hash and emits nothing.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flywheel.registry.atomic import atomic_write_text

if TYPE_CHECKING:
    from watchdog.observers.api import BaseObserver

    from flywheel.workspace import Workspace

log = logging.getLogger("flywheel.watcher")

# Reading files (as hashing does) raises these on inotify; they change nothing.
_READ_ONLY_EVENTS = frozenset({"opened", "closed_no_write"})
# Filesystems where inotify never hears about changes made by other machines.
_NETWORK_FILESYSTEMS = frozenset(
    {"nfs", "nfs4", "cifs", "smb", "smb3", "smbfs", "9p", "fuse.sshfs", "vboxsf", "afs", "ceph"}
)


class Debouncer:
    """Fires once the source has been quiet for ``quiet_s`` seconds after a change."""

    def __init__(self, quiet_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.quiet_s = quiet_s
        self._clock = clock
        self._lock = threading.Lock()
        self._last: float | None = None

    def changed(self, delay: float = 0.0) -> None:
        """Note a change; ``delay`` pushes the deadline further (e.g. to retry later)."""
        with self._lock:
            self._last = self._clock() + delay

    def pending(self) -> bool:
        with self._lock:
            return self._last is not None

    def take(self) -> bool:
        """True (once) when a change is pending and the quiet period has passed."""
        with self._lock:
            if self._last is None or self._clock() - self._last < self.quiet_s:
                return False
            self._last = None
            return True


@dataclass(frozen=True)
class Decision:
    emit: bool
    reason: str


@dataclass
class HashGate:
    """Decides whether a data hash deserves an event."""

    last_emitted: str | None = None

    def decide(self, current: str, production: str | None) -> Decision:
        if current == production:
            # Back to what production was trained on: forget the last event, so changing
            # the data to that content again is news again.
            self.last_emitted = None
            return Decision(False, "same data as the production model")
        if current == self.last_emitted:
            return Decision(False, "already announced")
        return Decision(True, "new content")

    def emitted(self, data_hash: str) -> None:
        self.last_emitted = data_hash


def load_last_emitted(path: Path) -> str | None:
    try:
        value = json.loads(path.read_text()).get("last_emitted")
    except (FileNotFoundError, json.JSONDecodeError, AttributeError):
        return None
    return str(value) if value else None


def save_last_emitted(path: Path, data_hash: str | None) -> None:
    # Persisted so a restarted watcher does not announce the same data a second time.
    atomic_write_text(path, json.dumps({"last_emitted": data_hash}) + "\n")


class ChangeMonitor:
    """The debounce -> hash -> decide -> emit loop, with every side effect injected."""

    def __init__(
        self,
        *,
        debouncer: Debouncer,
        gate: HashGate,
        hasher: Callable[[], str],
        production_hash: Callable[[], str | None],
        emit: Callable[[str, str | None, dict[str, Any]], str],
        on_emitted: Callable[[str | None], None] = lambda _h: None,
        retry_s: float = 5.0,
    ) -> None:
        self.debouncer = debouncer
        self.gate = gate
        self._hasher = hasher
        self._production_hash = production_hash
        self._emit = emit
        self._on_emitted = on_emitted
        self._retry_s = retry_s
        self.last_change_wall: float | None = None

    def changed(self) -> None:
        self.last_change_wall = time.time()
        self.debouncer.changed()

    def step(self) -> str | None:
        """Check once if due; returns the emitted event's id, if one went out."""
        if not self.debouncer.take():
            return None
        try:
            current = self._hasher()
        except (FileNotFoundError, NotADirectoryError) as err:
            # A file vanished mid-walk: the folder is still changing; look again later.
            log.info("data changed while hashing (%s); retrying", err)
            self.debouncer.changed()
            return None
        production = self._production_hash()
        before = self.gate.last_emitted
        decision = self.gate.decide(current, production)
        if self.gate.last_emitted != before:
            self._on_emitted(self.gate.last_emitted)
        if not decision.emit:
            log.info("data %s: no event (%s)", current[:8], decision.reason)
            return None
        details = {
            "changed_at": self.last_change_wall,
            "emitted_at": time.time(),
            "debounce_s": self.debouncer.quiet_s,
        }
        try:
            event_id = self._emit(current, production, details)
        except Exception as err:
            log.warning(
                "could not emit the data change (%s); retrying in %.0fs", err, self._retry_s
            )
            self.debouncer.changed(delay=self._retry_s)
            return None
        self.gate.emitted(current)
        self._on_emitted(current)
        log.info(
            "data %s changed (production %s): event %s emitted",
            current[:8],
            (production or "none")[:8],
            event_id,
        )
        return event_id


def needs_polling(path: Path) -> bool:
    """True when ``path`` lives on a filesystem inotify cannot watch reliably."""
    import psutil

    target = str(path.resolve())
    best, fstype = "", ""
    for part in psutil.disk_partitions(all=True):
        mount = part.mountpoint.rstrip("/") or "/"
        inside = target == mount or target.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) > len(best):
            best, fstype = mount, part.fstype
    return fstype in _NETWORK_FILESYSTEMS or fstype.startswith("fuse.")


def start_observer(
    folder: Path, on_change: Callable[[], None], *, poll: bool, poll_interval: float = 1.0
) -> BaseObserver:
    """Watch ``folder`` recursively: inotify where it works, polling where it does not."""
    from watchdog.events import FileSystemEvent, FileSystemEventHandler
    from watchdog.observers import Observer
    from watchdog.observers.polling import PollingObserver

    class Handler(FileSystemEventHandler):
        def on_any_event(self, event: FileSystemEvent) -> None:
            if event.event_type not in _READ_ONLY_EVENTS:
                on_change()

    if not poll:
        observer: BaseObserver = Observer()
        try:
            observer.schedule(Handler(), str(folder), recursive=True)
            observer.start()
            log.info("watching %s with %s", folder, type(observer).__name__)
            return observer
        except OSError as err:
            # e.g. the inotify watch limit is exhausted, or the kernel has no inotify.
            log.warning("native file events unavailable (%s); polling instead", err)
            observer.stop()
    observer = PollingObserver(timeout=poll_interval)
    observer.schedule(Handler(), str(folder), recursive=True)
    observer.start()
    log.info("watching %s by polling every %.1fs", folder, poll_interval)
    return observer


def _production_hash(ws: Workspace) -> Callable[[], str | None]:
    from flywheel.errors import FlywheelError
    from flywheel.registry import Registry

    registry = Registry(ws.layout.registry)

    def read() -> str | None:
        try:
            card = registry.production()
        except FlywheelError as err:
            log.warning("cannot read production from %s: %s", registry.root, err)
            return None
        return card.data_hash if card else None

    return read


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

    from flywheel.dvc_ops import data_hash
    from flywheel.service.events import emit_data_changed

    folder = ws.layout.data
    monitor = ChangeMonitor(
        debouncer=Debouncer(debounce_s),
        gate=HashGate(load_last_emitted(state_file)),
        hasher=lambda: data_hash(folder),
        production_hash=_production_hash(ws),
        emit=lambda h, prev, details: emit_data_changed(ws, h, prev, details),
        on_emitted=lambda h: save_last_emitted(state_file, h),
    )
    poll = poll or needs_polling(folder.parent if not folder.exists() else folder)
    observer: BaseObserver | None = None
    watched: int | None = None
    # Start as if something changed: data edited while nothing watched it is news too.
    monitor.changed()
    try:
        while not stop.is_set():
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

    from flywheel.service.state import ServicePaths
    from flywheel.workspace import open_workspace

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
