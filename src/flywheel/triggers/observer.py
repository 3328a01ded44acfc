"""File-system events for a folder: inotify where it works, polling where it does not."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from watchdog.observers.api import BaseObserver

log = logging.getLogger("flywheel.watcher")

# Reading files (as hashing does) raises these on inotify; they change nothing.
_READ_ONLY_EVENTS = frozenset({"opened", "closed_no_write"})
# Filesystems where inotify never hears about changes made by other machines.
_NETWORK_FILESYSTEMS = frozenset(
    {"nfs", "nfs4", "cifs", "smb", "smb3", "smbfs", "9p", "fuse.sshfs", "vboxsf", "afs", "ceph"}
)


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
