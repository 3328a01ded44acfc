"""Text from a client: length in characters and in UTF-8 bytes, and valid Unicode."""

from __future__ import annotations

import pytest

from flywheel.core.errors import InputError
from flywheel.families.base import InstanceLimits
from flywheel.families.text.instances import instance_text

LIMITS = InstanceLimits(1, ("PNG",), None, max_text_chars=10, max_text_bytes=20)


def test_text_limits_apply_to_clients_only() -> None:
    assert instance_text(0, "0123456789", LIMITS) == "0123456789"
    with pytest.raises(InputError, match="11 characters, more than the limit of 10"):
        instance_text(0, "01234567890", LIMITS)
    assert instance_text(0, "x" * 1000) == "x" * 1000  # files the pipeline read
    with pytest.raises(InputError, match="24 bytes of UTF-8, more than the limit of 20"):
        instance_text(3, "\U0001f600" * 6, LIMITS)
    with pytest.raises(InputError, match=r"instance 2:.*lone surrogate at character 4"):
        instance_text(2, {"text": "bad \ud800"}, LIMITS)
