"""A client's text instance (a string, or a text with a title) as the text to encode;
shared by the text and sentiment families."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flywheel.core.errors import InputError
from flywheel.families.base import InstanceLimits
from flywheel.families.text.sources import join_title


def instance_text(i: int, instance: Any, limits: InstanceLimits | None = None) -> str:
    """The text of one client instance: a string, or ``{"text": ..., "title": ...}``.
    With ``limits`` (a client sent it) its length and encoding are checked first."""
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
    if limits is not None:
        check_text(i, text, limits)
    return text


def check_text(i: int, text: str, limits: InstanceLimits) -> None:
    # Length first: the encode below would copy an over-long text once more.
    if len(text) > limits.max_text_chars:
        raise InputError(
            f"instance {i}: text is {len(text)} characters, more than the limit of "
            f"{limits.max_text_chars}"
        )
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError as err:
        # JSON's \ud800 escapes decode to lone surrogates, which are no text at all.
        raise InputError(
            f"instance {i}: text is not valid Unicode (a lone surrogate at character "
            f"{err.start}); send UTF-8 text"
        ) from None
    if size > limits.max_text_bytes:
        raise InputError(
            f"instance {i}: text is {size} bytes of UTF-8, more than the limit of "
            f"{limits.max_text_bytes}"
        )
