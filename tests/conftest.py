"""Shared fixtures: a parsed default config and small helpers. Nothing here starts servers."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

PROJECT = Path(__file__).resolve().parents[1]

# Keep third-party telemetry off for every test process and its children.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")


@pytest.fixture(scope="session")
def project_root() -> Path:
    return PROJECT


@pytest.fixture
def raw_params() -> dict[str, Any]:
    """The project's params.yaml as a plain dict, safe to modify per test."""
    return copy.deepcopy(yaml.safe_load((PROJECT / "params.yaml").read_text()))
