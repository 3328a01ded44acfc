"""Which dataset a registry belongs to.

Each params file (dataset) has a registry and a production alias of its own: a folder
(``paths.registry``) and, in team mode, a prefix on the remote (``remote.url``). Two params
files naming the same one would otherwise share one alias, each promotion replacing the
other dataset's model. The first deploy claims the registry for its dataset (a file
created once, linked into place so it is whole or absent; on the remote one create-only
object); a deploy of another dataset is refused with the fix, before anything is
registered.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from flywheel.core.atomic import atomic_write_bytes, temp_name
from flywheel.core.errors import RegistryError
from flywheel.remote.objects import ObjectStore, PreconditionFailed

CLAIM_FILE = "dataset.json"


def _body(dataset: str) -> bytes:
    return json.dumps({"dataset": dataset}).encode()


def _check(raw: bytes | None, dataset: str, where: str, fix: str) -> None:
    """Raise unless the claim ``raw`` names ``dataset`` (a claim gone meanwhile is no
    other dataset's)."""
    try:
        owner = json.loads(raw)["dataset"] if raw is not None else dataset
    except (ValueError, KeyError, TypeError):
        owner = None
    if owner != dataset:
        raise RegistryError(
            f"the registry {where} belongs to dataset {owner!r}, not {dataset!r}: give this "
            f"params file {fix}"
        )


def claim_folder(root: Path, dataset: str) -> None:
    """Claim the registry folder ``root`` for ``dataset``, or raise if another holds it."""
    path = root / CLAIM_FILE
    if not path.is_file():
        root.mkdir(parents=True, exist_ok=True)
        staged = root / temp_name(CLAIM_FILE)
        atomic_write_bytes(staged, _body(dataset))
        try:
            os.link(staged, path)  # fails if another deploy claimed it first
        except FileExistsError:
            pass
        finally:
            staged.unlink(missing_ok=True)
    try:
        raw: bytes | None = path.read_bytes()
    except OSError:
        raw = b""
    fix = (
        f"a paths.registry of its own (e.g. registry/{Path(dataset).name}), "
        f"or delete {path} if the data folder was only renamed"
    )
    _check(raw, dataset, str(root), fix)


def claim(store: ObjectStore, dataset: str) -> None:
    """Claim the remote registry for ``dataset``, or raise if another dataset holds it."""
    key = store.key("registry", CLAIM_FILE)
    try:
        store.put(key, _body(dataset), "claiming the remote registry", create_only=True)
        return
    except PreconditionFailed:
        pass  # claimed already: by this dataset, or another
    blob = store.get(key, "reading whose remote registry this is")
    fix = (
        f"a remote.url of its own (e.g. {store.url}-{dataset.replace('/', '-')}), "
        f"or delete {store.uri(key)} if the data folder was only renamed"
    )
    _check(blob.body if blob else None, dataset, f"at {store.uri(key).rsplit('/', 1)[0]}", fix)
