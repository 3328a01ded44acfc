"""The model registry: immutable versions with cards, an atomic production alias, and a
journal of how each version got where it is; on the local disk, or on the team's object
store (``remote.url``) with the local folder as this machine's verified mirror."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from flywheel.release.registry.card import ModelCard
from flywheel.release.registry.lifecycle import Registry

if TYPE_CHECKING:
    from flywheel.core.remote_section import RemoteConfig


def open_registry(root: Path, remote: RemoteConfig | None = None) -> Registry:
    """The registry the params name: on the remote when ``remote.url`` is set (``root``
    is then its local mirror), else the folder ``root`` itself."""
    if remote is None or not remote.enabled:
        return Registry(root)
    from flywheel.release.registry.remote import RemoteRegistry
    from flywheel.remote.objects import ObjectStore

    return RemoteRegistry(root, ObjectStore(remote))


__all__ = ["ModelCard", "Registry", "open_registry"]
