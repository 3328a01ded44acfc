"""What a triggered run needs to decide before doing any work: is this data already live?"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flywheel.core.workspace import Workspace
    from flywheel.release.registry import ModelCard


def production_match(ws: Workspace, data_hash: str) -> ModelCard | None:
    """The production card when ``data_hash`` is both the data on disk now and the data
    production was trained on, with the same params; None when there is work to do.

    Checking the data on disk as well keeps a late run honest: if the data moved on after
    the event, the run processes what is there now instead of exiting.
    """
    from flywheel.datasets.hashing import data_hash as current_hash
    from flywheel.release.registry import open_registry

    card = open_registry(ws.layout.registry, ws.params.remote).production()
    if card is None or card.data_hash != data_hash:
        return None
    if card.params_hash != ws.params.fingerprint():
        return None
    if not ws.layout.data.exists():
        return None  # this machine lacks the data: the run pulls it from the team remote
    if current_hash(ws.layout.data) != data_hash:
        return None
    return card
