"""A client's text instance (a string, or a text with a title) as the text to encode;
shared by the text and sentiment families."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flywheel.core.errors import InputError
from flywheel.families.text.sources import join_title


def instance_text(i: int, instance: Any) -> str:
    """The text of one client instance: a string, or ``{"text": ..., "title": ...}``."""
    if isinstance(instance, str):
        text: str | None = instance
    elif isinstance(instance, Mapping) and "text" in instance:
        extra = sorted(set(instance) - {"text", "title"})
        if extra:
            raise InputError(f"instance {i}: unexpected fields {extra}; use 'text' and 'title'")
        body, title = instance["text"], instance.get("title")
        if not isinstance(body, str) or not (title is None or isinstance(title, str)):
            raise InputError(f"instance {i}: 'text' and 'title' must be strings")
        text = join_title(title, body)
    else:
        raise InputError(
            f"instance {i}: expected a string or {{'text': <string>, 'title': <string>}}, "
            f"got {type(instance).__name__}"
        )
    if text is None or not text.strip():
        raise InputError(f"instance {i}: text is empty")
    return text
