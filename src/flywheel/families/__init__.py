"""Model families: one implementation of :class:`~flywheel.families.base.Family` per task."""

from __future__ import annotations

from importlib import import_module

from flywheel.families.base import Family

# Imported on demand: the transformer family needs the optional [transformer] extra.
_FAMILIES = {
    "image_classification": ("flywheel.families.image", "ImageFamily"),
    "text_classification": ("flywheel.families.text", "TextFamily"),
    "sentiment": ("flywheel.families.sentiment", "SentimentFamily"),
    "tabular_regression": ("flywheel.families.tabular", "TabularFamily"),
}


def get_family(task: str) -> Family:
    try:
        module, cls = _FAMILIES[task]
    except KeyError:
        raise ValueError(f"unknown task {task!r}; one of {sorted(_FAMILIES)}") from None
    family: Family = getattr(import_module(module), cls)()
    return family


__all__ = ["Family", "get_family"]
