"""Each stage dependency hashed once, not once per DVC bookkeeping step.

Reproducing one stage, DVC builds the hash of every dependency again at each step that
needs it: the status check, the run-cache key (twice), ``save_deps`` before the command,
``save`` after it and the run-cache entry (twice more). A folder dependency is walked file by
file each time, with one state-database lookup per file; the code folders every stage
depends on were hashed dozens of times per run.

:func:`install_hash_memo` makes DVC's dependency hashing remember its last answer per path,
keyed on what DVC's own state database trusts (each file's inode, size and mtime, here for
the whole folder at once, plus the ``.dvcignore`` files that shape the walk). A dependency
whose files did not change since is answered from memory; any change (a file added, removed,
rewritten or touched) misses and DVC hashes it as before. Outputs are never memoised: DVC
caches them from the objects it builds. A dependency that changes while a stage runs is
still seen by the hash DVC records after the stage (the pins check relies on it).
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

from flywheel.datasets.hashing import SignatureMemo, content_signature

# Enough for every dependency of a few projects; a long-lived worker cycles through.
_memo = SignatureMemo(512)


def _ignore_files(path: str, root: str) -> list[tuple[str, Any]]:
    """The ``.dvcignore`` files from the repository root down to ``path``'s folder."""
    out = []
    here = Path(path).parent
    top = Path(root)
    while True:
        candidate = str(here / ".dvcignore")
        out.append((candidate, content_signature(candidate)))
        if here == top or top not in here.parents:
            return out
        here = here.parent


def signature(path: str, root: str) -> tuple[Any, ...] | None:
    """What DVC's hash of ``path`` depends on: its files' signature and the ``.dvcignore``
    files that shape DVC's walk; None when it cannot be read (DVC reports that itself)."""
    files = content_signature(path)
    return None if files is None else (files, tuple(_ignore_files(path, root)))


def clear() -> None:
    _memo.clear()


@functools.cache
def install_hash_memo() -> None:
    """Memoise DVC's hashing of stage dependencies (once per process)."""
    from dvc.output import Output

    original = Output._build

    def _build(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not (getattr(self, "IS_DEPENDENCY", False) and len(args) == 4 and self.repo):
            return original(self, *args, **kwargs)
        odb, path, fs, name = args
        if getattr(fs, "protocol", None) != "local":
            return original(self, *args, **kwargs)
        key = (str(path), name, str(getattr(odb, "path", "")), str(kwargs.get("dry_run")))
        # Taken before hashing: a file changed meanwhile leaves a signature no later call has.
        before = signature(str(path), str(self.repo.root_dir))
        result = _memo.get(key, before)
        if result is None:
            result = original(self, *args, **kwargs)
            _memo.put(key, before, result)
        staging, meta, obj = result
        return staging, copy.copy(meta), obj

    Output._build = _build
