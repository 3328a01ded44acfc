"""DVC's own files (``dvc.lock``, ``.dvc`` files, its path lock): written atomically by us,
and repaired at the start of a run when a crash (or an editor) left them unreadable.

DVC writes ``dvc.lock`` and ``.dvc`` files with ``open(path, "w+")``: truncate, then write.
A kill between the two leaves an empty or half file, and every later DVC call fails to
parse it until someone fixes it by hand. DVC has no atomic-write option, but every write
of those files goes through two names in ``dvc.dvcfile`` (``dump_yaml`` for ``.dvc`` files,
``modify_yaml`` for ``dvc.lock`` and ``dvc.yaml``); :func:`install_atomic_writes` rebinds
those two names in that one module to versions that produce the same bytes with DVC's own
serialiser and put them on disk temp-fsync-rename-fsync. Nothing else in DVC changes.

:func:`repair` covers files written before that (or by another tool): an unreadable
``dvc.lock`` is moved aside (DVC then sees every stage as changed, and its run cache
restores the outputs of every stage whose inputs it has seen, so nothing is recomputed),
an unreadable ``data.dvc`` is moved aside (the run records the data again once it passes
validation), an unreadable ``.dvc/tmp/rwlock`` is removed (it only lists lock holders).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from flywheel.core.atomic import atomic_write_text, rename_durable

log = logging.getLogger(__name__)

# path -> (the text written there, the structure it was dumped from); see modify_yaml.
_last_written: dict[str, tuple[str, Any]] = {}


def _local(fs: Any) -> bool:
    return fs is None or getattr(fs, "protocol", None) == "local"


@functools.cache
def install_atomic_writes() -> None:
    """Make DVC's writes of ``dvc.lock`` and ``.dvc`` files atomic (once per process)."""
    import dvc.dvcfile as dvcfile
    from dvc.utils.serialize import dumps_yaml, parse_yaml_for_update

    original_dump, original_modify = dvcfile.dump_yaml, dvcfile.modify_yaml

    def dump_yaml(path: Any, data: Any, fs: Any = None, **kwargs: Any) -> None:
        if kwargs or not _local(fs):
            original_dump(path, data, fs=fs, **kwargs)
            return
        target = Path(os.fspath(path))
        atomic_write_text(target, dumps_yaml(data), fault=f"dvcfile.{target.name}")

    @contextlib.contextmanager
    def modify_yaml(path: Any, fs: Any = None) -> Iterator[Any]:
        if not _local(fs):
            with original_modify(path, fs=fs) as data:
                yield data
            return
        target = Path(os.fspath(path))
        text = target.read_text(encoding="utf-8") if target.exists() else None
        # The structure this process last wrote here, while the file still holds exactly
        # its bytes: DVC's round-trip parse of dvc.lock costs more than the stage's own
        # bookkeeping. Taken out while the caller edits it, so a failed edit is not kept.
        kept = _last_written.pop(str(target), None)
        if kept is not None and text is not None and kept[0] == text:
            data = kept[1]
        else:
            data = parse_yaml_for_update(text, path) if text is not None else {}
        yield data
        written = dumps_yaml(data)
        atomic_write_text(target, written, fault=f"dvcfile.{target.name}")
        _last_written[str(target)] = (written, data)

    dvcfile.dump_yaml = dump_yaml
    dvcfile.modify_yaml = modify_yaml


def _readable_yaml(path: Path) -> bool:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError):
        return False
    return isinstance(loaded, dict) and bool(loaded)


def _move_aside(path: Path, why: str) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    rename_durable(path, aside)
    log.warning("%s was unreadable (%s): moved to %s; the run rebuilds it", path, why, aside.name)
    return aside


def repair(workspace: Path, project: Path, data_dvc: Path | None) -> list[str]:
    """Fix what a crash can leave unreadable, so the run proceeds with no manual step;
    returns one line per repair (nothing when all is well)."""
    done = []
    lock = workspace / "dvc.lock"
    if lock.is_file() and not _readable_yaml(lock):
        done.append(f"dvc.lock moved to {_move_aside(lock, 'empty or not YAML').name}")
    if data_dvc is not None and data_dvc.is_file() and not _recorded_hash_ok(data_dvc):
        done.append(f"{data_dvc.name} moved to {_move_aside(data_dvc, 'no data hash').name}")
    rwlock = project / ".dvc" / "tmp" / "rwlock"
    if rwlock.is_file():
        try:
            json.loads(rwlock.read_text() or "{}")
        except (json.JSONDecodeError, UnicodeDecodeError):
            rwlock.unlink()
            log.warning("%s was unreadable: removed (it only lists lock holders)", rwlock)
            done.append("removed an unreadable .dvc/tmp/rwlock")
    return done


def _recorded_hash_ok(dvc_file: Path) -> bool:
    if not _readable_yaml(dvc_file):
        return False
    meta = yaml.safe_load(dvc_file.read_text(encoding="utf-8"))
    outs = meta.get("outs")
    return isinstance(outs, list) and bool(outs) and isinstance(outs[0], dict) and "md5" in outs[0]
