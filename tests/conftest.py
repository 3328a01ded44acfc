"""Shared fixtures: a parsed default config and small helpers. Nothing here starts servers."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import pytest

PROJECT = Path(__file__).resolve().parents[1]

# The loopback S3 server fixtures (`s3_server`, `remote`) of the team-mode tests.
pytest_plugins = ["tests.moto_s3"]

# Keep third-party telemetry off for every test process and its children.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")


@pytest.fixture(scope="session")
def project_root() -> Path:
    return PROJECT


@pytest.fixture
def raw_params() -> dict[str, Any]:
    """The project's params.yaml resolved (every section written out) as a plain dict, safe
    to modify per test; a full file is as valid as the minimal one users write."""
    from flywheel.core.config import load_params

    return copy.deepcopy(load_params(PROJECT / "params.yaml").as_dict())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`gpu` tests skip with a reason where no CUDA device is usable (CI never has one)."""
    if not any(item.get_closest_marker("gpu") for item in items):
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU; none is available on this machine")
    for item in items:
        if item.get_closest_marker("gpu"):
            item.add_marker(skip)
