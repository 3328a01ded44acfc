"""The on-disk model registry: immutable versions with cards, an atomic production alias,
and a journal of how each version got where it is."""

from flywheel.release.registry.card import ModelCard
from flywheel.release.registry.lifecycle import Registry

__all__ = ["ModelCard", "Registry"]
