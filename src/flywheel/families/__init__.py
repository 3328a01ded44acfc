"""Model families: one implementation of :class:`~flywheel.families.base.Family` per task.

:data:`FAMILIES` is the one table of tasks: ``params.task`` names a key, and config,
every stage, the gate and the server look the family up here. A family's class says which
data kinds and compression variants it supports and what its task's defaults are.
Families are imported on demand: the transformer family needs the optional extra.
"""

from __future__ import annotations

from functools import cache
from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flywheel.families.base import Family

FAMILIES: dict[str, str] = {
    "image_classification": "flywheel.families.image.family:ImageFamily",
    "text_classification": "flywheel.families.text.family:TextFamily",
    "sentiment": "flywheel.families.sentiment.family:SentimentFamily",
    "tabular_regression": "flywheel.families.tabular.family:TabularFamily",
}


@cache
def family_class(task: str) -> type[Family]:
    try:
        module, name = FAMILIES[task].split(":")
    except KeyError:
        raise ValueError(f"unknown task {task!r}; one of {sorted(FAMILIES)}") from None
    cls: type[Family] = getattr(import_module(module), name)
    return cls


def get_family(task: str) -> Family:
    return family_class(task)()


__all__ = ["FAMILIES", "family_class", "get_family"]
