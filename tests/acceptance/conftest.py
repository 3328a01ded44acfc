"""The skeleton every acceptance test shares.

Each test runs the real Prefect flow on one of ``../shared/datasets``, as shipped in
``examples/<name>/params.yaml``, in a temporary git + DVC project, and checks the targets of
its issue on the deployed variant. A test module only says which dataset it needs::

    pytestmark = [
        pytest.mark.acceptance,
        pytest.mark.slow,
        pytest.mark.dataset("news-ag", "test.csv"),  # skipped when that file is absent
    ]

and then uses the fixtures below: ``dataset`` (the folder), ``make_project`` and
``run_pipeline``, which returns a :class:`PipelineRun`.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from flywheel.pipeline.dvc import init_repository

if TYPE_CHECKING:
    from flywheel.release.predictor import Predictor

PROJECT = Path(__file__).resolve().parents[2]
DATASETS = PROJECT.parent / "shared" / "datasets"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "dataset(folder, *files): the ../shared/datasets folder a test reads; "
        "the test is skipped when any of the files is absent",
    )


def _dataset_marker(item: pytest.Item) -> tuple[Path, tuple[str, ...]] | None:
    marker = item.get_closest_marker("dataset")
    if marker is None:
        return None
    folder, *files = marker.args
    return DATASETS / folder, tuple(files)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip at collection, before any fixture (the Prefect server) starts for nothing."""
    for item in items:
        found = _dataset_marker(item)
        if found is None:
            continue
        folder, files = found
        missing = [f for f in files if not (folder / f).is_file()]
        if not folder.is_dir() or missing:
            what = f"{', '.join(missing)} in {folder}" if folder.is_dir() else str(folder)
            reason = f"{what} not found (the shared datasets are not on this machine)"
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture
def dataset(request: pytest.FixtureRequest) -> Path:
    """The folder named by the test's ``dataset`` marker."""
    found = _dataset_marker(request.node)
    if found is None:
        raise pytest.UsageError(f"{request.node.nodeid} uses `dataset` without a dataset marker")
    return found[0]


@pytest.fixture(scope="session")
def prefect_backend() -> Iterator[None]:
    """One temporary Prefect server for every acceptance test of the session."""
    from prefect.testing.utilities import prefect_test_harness

    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    with prefect_test_harness(server_startup_timeout=180):
        yield


def create_project(root: Path, example: str, data: Path | str) -> Path:
    """A git + DVC project at ``root`` running ``examples/<example>/params.yaml`` on ``data``.

    ``data`` is absolute for a dataset outside the project (hashed, not copied), or relative
    to ``root`` for one the test writes inside it (then versioned by ``dvc add``).
    """
    from flywheel.core.config import load_params
    from flywheel.core.layout import Layout
    from flywheel.stages.validate.suite import save_suite

    root.mkdir()
    shutil.copy(PROJECT / "dvc.yaml", root / "dvc.yaml")
    raw = yaml.safe_load((PROJECT / "examples" / example / "params.yaml").read_text())
    raw.setdefault("data", {})["path"] = str(data)
    raw.setdefault("paths", {})["code"] = str(PROJECT / "src" / "flywheel")
    (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    init_repository(root, author="ci")
    params = load_params(root / "params.yaml")
    save_suite(params, Layout.from_params(params, root))
    return root


@pytest.fixture
def make_project(tmp_path: Path) -> Callable[[str, Path | str], Path]:
    """``make_project(example, data)``: :func:`create_project` at ``tmp_path/project``."""
    return lambda example, data: create_project(tmp_path / "project", example, data)


@dataclass(frozen=True)
class PipelineRun:
    """What one run of the flow left behind, with the figures the issues report."""

    project: Path
    record: dict[str, Any]
    evaluation: dict[str, Any]
    seconds: float

    @property
    def winner(self) -> str:
        return str(self.evaluation["winner"])

    @property
    def fp32(self) -> dict[str, float]:
        return dict(self.evaluation["variants"]["fp32"]["metrics"])

    @property
    def deployed(self) -> dict[str, float]:
        return dict(self.evaluation["variants"][self.winner]["metrics"])

    @property
    def ratios(self) -> dict[str, float]:
        return dict(self.evaluation["ratios"])

    @property
    def size_vs_eager(self) -> float:
        """Deployed ONNX file over the PyTorch state dict (what eager serving would load)."""
        eager = self.evaluation["torch_eager"]["size_bytes"]
        return round(self.evaluation["variants"][self.winner]["size_bytes"] / eager, 4)

    def summary(self, name: str, *metrics: str) -> str:
        def figures(values: dict[str, float]) -> str:
            return ", ".join(f"{m} {values[m]:.4f}" for m in metrics)

        r = self.ratios
        return (
            f"\n{name}: fp32 {figures(self.fp32)}; deployed {self.winner} "
            f"{figures(self.deployed)}; size/fp32 {r['winner_size_vs_fp32']}, "
            f"size/eager {self.size_vs_eager}, p50/eager {r['winner_p50_vs_torch_eager']}, "
            f"p50/fp32 {r['winner_p50_vs_fp32']}; pipeline {self.seconds:.0f}s"
        )

    def predictor(self) -> Predictor:
        """The deployed model, loaded from the project's registry."""
        from flywheel.core.config import load_params
        from flywheel.release.predictor import Predictor
        from flywheel.release.registry import Registry

        registry = load_params(self.project / "params.yaml").paths.registry
        return Predictor.from_registry(Registry(self.project / registry))


@pytest.fixture
def run_pipeline(request: pytest.FixtureRequest) -> Callable[[Path], PipelineRun]:
    """``run_pipeline(project)``: the flow, timed; asserts the candidate was deployed.

    The Prefect server starts on the first call, so a test that skips (a missing extra)
    before calling does not pay for it.
    """

    def run(project: Path) -> PipelineRun:
        request.getfixturevalue("prefect_backend")
        from flows.pipeline import pipeline

        start = time.perf_counter()
        out = pipeline(params_file=str(project / "params.yaml"), project=str(project))
        seconds = time.perf_counter() - start
        record = json.loads(out["record"])
        assert record["deploy"]["status"] == "deployed", record
        evaluation = json.loads((project / "artifacts/metrics/evaluation.json").read_text())
        return PipelineRun(project, record, evaluation, seconds)

    return run
