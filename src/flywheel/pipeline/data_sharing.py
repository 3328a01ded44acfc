"""A data version put on the team remote before it is announced.

In team mode the machine whose data changed is rarely the one that runs the retrain: the
watcher announces ``flywheel.data.changed`` with the version's hash, and a worker on
another machine pulls exactly that version (:func:`flywheel.pipeline.remote.pull_data`).
So the watcher first puts the version in DVC's cache and on DVC's remote, by content
(the files and the ``.dir`` listing), without ``dvc add``: ``data.dvc`` records validated
data only, and a run may be writing it at that moment. A folder that changed while it was
hashed is refused (the watcher looks again and announces what the folder became).
"""

from __future__ import annotations

import logging

from flywheel.core.errors import DataChangedError, RemoteUnavailable
from flywheel.core.workspace import Workspace
from flywheel.pipeline import dvc
from flywheel.pipeline.remote import dvc_config, dvc_url, transfer_errors

log = logging.getLogger(__name__)


def share_data(ws: Workspace, wanted: str) -> int:
    """Put the data folder, which must be version ``wanted``, on the remote; the number of
    objects sent (0 when it was there already, or without a remote)."""
    remote = ws.params.remote
    if not remote.enabled:
        return 0
    from dvc_data.hashfile.build import build
    from dvc_data.hashfile.transfer import transfer
    from dvc_data.hashfile.tree import Tree

    # Resolved: a workspace's path runs through .flywheel/, which .dvcignore leaves out.
    folder = ws.layout.data.resolve()
    with (
        transfer_errors(remote, f"sharing data version {wanted[:8]}"),
        dvc.open_repo(ws.project, dvc_config(remote)) as repo,
    ):
        cache = repo.cache.local
        staging, _, obj = build(cache, str(folder), repo.fs, "md5", ignore=repo.dvcignore)
        if obj.hash_info.value != wanted:
            raise DataChangedError(
                f"{folder} changed while it was shared ({wanted[:8]} announced, now "
                f"{str(obj.hash_info.value)[:8]}); the watcher announces the new content"
            )
        transfer(staging, cache, {obj.hash_info}, shallow=False, hardlink=False)
        # The listing and its files: pushing a .dir id alone sends only the listing.
        entries = [oid for _, _, oid in obj] if isinstance(obj, Tree) else []
        result = repo.cloud.push([obj.hash_info, *entries])
    if result.failed:
        raise RemoteUnavailable(
            f"sharing data version {wanted[:8]} with {dvc_url(remote)}: "
            f"{len(result.failed)} object(s) not sent; the watcher tries again"
        )
    log.info("data %s on %s (%d sent)", wanted[:8], dvc_url(remote), len(result.transferred))
    return len(result.transferred)
