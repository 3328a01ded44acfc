"""The on-disk model registry: immutable versions with cards, and an atomic production alias."""

from flywheel.release.registry.card import ModelCard
from flywheel.release.registry.store import Registry

__all__ = ["ModelCard", "Registry"]
