"""The on-disk model registry: immutable versions with cards, and an atomic production alias."""

from flywheel.registry.card import ModelCard
from flywheel.registry.store import Registry

__all__ = ["ModelCard", "Registry"]
