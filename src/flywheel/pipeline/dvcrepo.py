"""Opening DVC's repository object: once per process and project, not once per call.

A run opens the repository for its preparation, its plan, every stage and the data record;
building DVC's ``Repo`` (config, git, ignore rules, state database) each time costs a large
share of a stage's own bookkeeping. :func:`open_repo` keeps one per project (and remote
config) and hands it to one caller at a time; a second caller meanwhile, say another thread,
gets a fresh one as before. DVC drops the repository's caches (index, config, ignore rules,
state) whenever its lock is taken and released, and here whenever it is handed out; what
it keeps beyond that (the cache location, the remotes) is read from ``.dvc/config``
again whenever that file or ``config.local`` changes.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flywheel.core.errors import FlywheelError
from flywheel.datasets.hashing import content_signature
from flywheel.pipeline.dvcfiles import install_atomic_writes
from flywheel.pipeline.dvchash import install_hash_memo

if TYPE_CHECKING:
    from dvc.repo import Repo

_DVC_LOGGERS = ("dvc", "dvc_objects", "dvc_data")
# (root, config) -> (the config files' signature, the repository, who holds it)
_kept: dict[tuple[str, str], tuple[Any, Repo, threading.Lock]] = {}
_guard = threading.Lock()


class DvcBusy(FlywheelError):
    """Another DVC process holds the repository lock: transient, worth a retry."""


@functools.cache
def _adopt_dvc_logging() -> None:
    """Route DVC's log records through this process's logging, once.

    Importing ``dvc`` attaches DVC's own console handlers to its loggers and sets them to
    INFO, as its command line wants; in a library every line would then print twice
    (DVC's handler and ours) and the CLI's level policy would be lost. The handlers go, the
    levels set before the import stay.
    """
    levels = {name: logging.getLogger(name).level for name in _DVC_LOGGERS}
    import dvc.logger

    for name in _DVC_LOGGERS:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            if isinstance(handler, dvc.logger.LoggerHandler):
                logger.removeHandler(handler)
        logger.setLevel(levels[name])


@contextlib.contextmanager
def _working_directory(path: Path) -> Iterator[None]:
    # DVC runs a stage's cmd in the workspace; the in-process body gets the same cwd.
    path = Path(path).resolve()
    before = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def _config_signature(repo_root: str) -> Any:
    dvc_dir = Path(repo_root) / ".dvc"
    return tuple(content_signature(str(dvc_dir / name)) for name in ("config", "config.local"))


@contextlib.contextmanager
def _kept_repo(root: Path, config: dict[str, Any] | None) -> Iterator[Repo]:
    from dvc.repo import Repo

    key = (str(Path(root).resolve()), json.dumps(config, sort_keys=True, default=str))
    with _guard:
        entry = _kept.get(key)
        if entry is not None and entry[0] != _config_signature(entry[1].root_dir):
            _kept.pop(key)  # its config changed: a new one reads it (the old one is dropped)
            entry = None
    if entry is None:
        repo = Repo(str(root), config=config)
        with _guard:
            entry = _kept.setdefault(
                key, (_config_signature(repo.root_dir), repo, threading.Lock())
            )
    _, repo, holder = entry
    if not holder.acquire(blocking=False):
        with Repo(str(root), config=config) as fresh:  # in use elsewhere: one of its own
            yield fresh
        return
    try:
        # What DVC drops when its lock is taken, dropped for callers that take none.
        repo._reset()
        yield repo
    finally:
        holder.release()


@contextlib.contextmanager
def open_repo(root: Path, config: dict[str, Any] | None = None) -> Iterator[Repo]:
    """The DVC repository holding ``root``, opened from ``root`` as the working directory (DVC
    resolves targets against it, as the CLI run there would); a lock held by another process
    becomes :class:`DvcBusy`. ``config`` overrides DVC's config (the team remote)."""
    _adopt_dvc_logging()
    install_atomic_writes()
    install_hash_memo()
    from dvc.lock import LockError

    try:
        with _working_directory(root), _kept_repo(root, config) as repo:
            yield repo
    except LockError as err:
        raise DvcBusy(f"DVC repository at {root} is locked by another process: {err}") from err
