"""Where a run on a worker gets the data version it was started for.

In team mode every worker runs from its own checkout. With a shared remote (team mode
part 1: object storage holding DVC's cache and the registry) the run pulls the announced
data version from it before snapshotting; without one, each checkout holds its own copy
of the data and there is nothing to pull.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flywheel.core.workspace import Workspace


def pull_data_version(ws: Workspace, data_hash: str) -> bool:
    """Make ``data_hash`` the checkout's data; True when it came from the remote.

    The one call the flow makes before snapshotting, on every worker: with ``remote.url``
    set and no data in the checkout, exactly that version is pulled from DVC's remote
    (:func:`flywheel.pipeline.remote.pull_data`); otherwise nothing happens (False)."""
    if not ws.params.remote.enabled:
        return False
    from flywheel.pipeline.remote import pull_data

    return pull_data(ws, data_hash)
