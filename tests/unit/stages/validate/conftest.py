"""Fixtures shared by the data tests: one GX project per module (scaffolding it is the slow
part), built from that module's own ``params`` fixture."""

from __future__ import annotations

from pathlib import Path

import pytest

from flywheel.core.config import Params
from flywheel.core.layout import Layout
from flywheel.stages.validate import save_suite


@pytest.fixture(scope="module")
def shared_expectations(tmp_path_factory: pytest.TempPathFactory, params: Params) -> Path:
    root = tmp_path_factory.mktemp("gx-project")
    save_suite(params, Layout.from_params(params, root))
    return root / "expectations"


@pytest.fixture
def layout(tmp_path: Path, params: Params, shared_expectations: Path) -> Layout:
    """A layout under ``tmp_path`` whose expectations are the module's shared project."""
    base = Layout.from_params(params, tmp_path)
    return Layout(base.root, base.artifacts, base.registry, shared_expectations, base.data)
