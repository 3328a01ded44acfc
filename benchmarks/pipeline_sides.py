"""The three ways of running the pipeline that benchmarks.pipeline_overhead puts side by
side, and what each needs: a project folder, a Prefect server, warm imports.

- direct: the six stage functions and the gate-and-deploy called in this process;
- flow: ``flows.pipeline.pipeline`` in this process, against a temporary Prefect server;
- ``dvc repro`` from a shell, as a user types it: DVC starts ``flywheel stage <name>`` (a
  new Python process with its imports) per stage.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks.common import PROJECT
from flywheel.pipeline.dvc import init_repository

# Tiny but real settings for --quick (tests/integration uses the same).
QUICK_PARAMS: dict[str, dict[str, Any]] = {
    "train": {"max_epochs": 4, "patience": 2},
    "compress": {"finetune_epochs": 1, "calibration_samples": 64},
    "evaluate": {"latency_runs": 20, "warmup_runs": 3, "throughput_runs": 3},
    "gate": {"min_accuracy": 0.8},
}


def write_params(path: Path, overrides: dict[str, dict[str, Any]], code: Path) -> None:
    """The project's params with ``overrides``, every section written out in full (defaults
    included), so each key dvc.yaml lists as a stage parameter is present in the file."""
    import yaml

    from flywheel.core.config import parse_params

    raw = yaml.safe_load((PROJECT / "params.yaml").read_text())
    for section, values in overrides.items():
        raw.setdefault(section, {}).update(values)
    raw.setdefault("paths", {})["code"] = str(code)
    full = parse_params(raw, str(PROJECT / "params.yaml")).as_dict()
    path.write_text(yaml.safe_dump(full, sort_keys=False))


def make_folder(root: Path, overrides: dict[str, dict[str, Any]], *, dvc: bool) -> Path:
    """The default dataset, params and suite in ``root``; a git + DVC project if ``dvc``."""
    from flywheel.core.config import load_params
    from flywheel.core.layout import Layout
    from flywheel.datasets.digits import materialise_digits
    from flywheel.stages.validate.suite import save_suite

    root.mkdir(parents=True)
    shutil.copy(PROJECT / "dvc.yaml", root / "dvc.yaml")
    # The stages' code deps hash a frozen copy of the source: other people editing the
    # checkout meanwhile must not turn the unchanged rerun into a changed one.
    code = root / "code"
    shutil.copytree(
        PROJECT / "src" / "flywheel", code, ignore=shutil.ignore_patterns("__pycache__")
    )
    write_params(root / "params.yaml", overrides, code)
    if dvc:
        init_repository(root, author="bench")
    materialise_digits(root / "data")
    params = load_params(root / "params.yaml")
    save_suite(params, Layout.from_params(params, root))
    return root


def direct_run(root: Path) -> dict[str, Any]:
    """The stage functions and the deploy step, called in order in this process."""
    from flywheel import stages as stage_table
    from flywheel.core.workspace import open_workspace
    from flywheel.datasets.hashing import data_hash
    from flywheel.release.deploy import deploy

    t0 = time.perf_counter()
    ws = open_workspace(root / "params.yaml", root)
    digest = data_hash(ws.layout.data)
    stages = {}
    for name in stage_table.NAMES:
        s0 = time.perf_counter()
        stage_table.run(name, ws.params, ws.layout)
        stages[name] = round(time.perf_counter() - s0, 3)
    d0 = time.perf_counter()
    outcome = deploy(ws, digest, {})
    return {
        "seconds": round(time.perf_counter() - t0, 3),
        "stages": stages,
        "deploy_seconds": round(time.perf_counter() - d0, 3),
        "status": outcome.status,
    }


def flow_run(project: Path) -> dict[str, Any]:
    import json

    from flows.pipeline import pipeline

    t0 = time.perf_counter()
    record = json.loads(
        pipeline(params_file=str(project / "params.yaml"), project=str(project))["record"]
    )
    seconds = time.perf_counter() - t0
    stages = {name: s["seconds"] for name, s in record["stages"].items()}
    return {
        "seconds": round(seconds, 3),
        "stages": stages,
        "outside_stages_seconds": round(seconds - sum(stages.values()), 3),
        "status": record["status"],
    }


def cli_rerun(project: Path, home: Path) -> dict[str, Any]:
    """``flywheel run`` as a user types it, from its own process (imports, ephemeral server)."""
    env = {**os.environ, "PREFECT_HOME": str(home)}
    env.pop("PREFECT_API_URL", None)  # its own ephemeral server, as on a user's machine
    t0 = time.perf_counter()
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "flywheel"), "run"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    seconds = time.perf_counter() - t0
    return {
        "seconds": round(seconds, 3),
        "returncode": proc.returncode,
        "nothing_to_do": "nothing to do" in proc.stdout,
        "output_tail": (proc.stdout + proc.stderr)[-600:],
    }


def startup_costs() -> dict[str, float]:
    """Seconds to start the two processes ``dvc repro`` runs per stage from a shell: DVC, then
    ``flywheel stage`` (Python start-up and a stage's imports), median of three. The flow
    avoids both by running stages in its own process; this is what that saves per stage."""
    import statistics

    def seconds(cmd: list[str]) -> float:
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            subprocess.run(cmd, capture_output=True, check=False, timeout=300)
            times.append(time.perf_counter() - t0)
        return round(statistics.median(times), 3)

    python = sys.executable
    imports = (
        "import flywheel.stages, flywheel.nn.fit, flywheel.stages.compress.run, torch, lightning"
    )
    return {
        "python_m_dvc_version": seconds([python, "-m", "dvc", "version"]),
        "stage_imports": seconds([python, "-c", imports]),
    }


@contextmanager
def prefect_server() -> Iterator[float]:
    """A temporary Prefect server (SQLite) for flows run in this process; yields its start-up
    seconds, one throwaway flow run included: a fresh server answers its first flow and flow
    run creations slowly, which a long-lived server (``flywheel up``) has long paid."""
    from prefect import flow
    from prefect.testing.utilities import prefect_test_harness

    @flow(name="bench-warm-up")
    def _first() -> None:
        return None

    t0 = time.perf_counter()
    with prefect_test_harness(server_startup_timeout=180):
        _first()
        yield round(time.perf_counter() - t0, 3)


def warm_up() -> None:
    """Import what both sides use, so neither pays the imports inside its timing."""
    import importlib

    for module in (
        "torch",
        "lightning",
        "onnxruntime",
        "flows.pipeline",
        "flywheel.stages.compress.run",
        "flywheel.release.deploy",
        "flywheel.stages.validate.run",
    ):
        importlib.import_module(module)


def dvc_repro_run(project: Path) -> dict[str, Any]:
    """``dvc repro`` from a shell in a git + DVC project: every stage's ``cmd`` (``flywheel
    stage <name>``) in its own process, as DVC runs it."""
    from flywheel.core.workspace import open_workspace

    # dvc.yaml reads params.resolved.yaml, which `flywheel` writes from params.yaml.
    open_workspace(project / "params.yaml", project)
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    t0 = time.perf_counter()
    proc = subprocess.run(
        [str(bin_dir / "dvc"), "repro"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"dvc repro failed in {project}: {(proc.stdout + proc.stderr)[-2000:]}")
    return {"seconds": round(seconds, 3), "returncode": proc.returncode}
