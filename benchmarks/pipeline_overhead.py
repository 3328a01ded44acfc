"""Pipeline overhead: the Prefect flow end to end vs the same stage functions called directly.

Flow side: a fresh git + DVC project holding the default dataset and params (as
``tests/integration`` builds one), run through ``flows.pipeline.pipeline`` against a
temporary Prefect server: snapshot (``dvc add``), plan (``dvc status``), one task per stage
(DVC's skip/run-cache/lock bookkeeping around the stage function, in the flow's process),
gate, deploy and the artifacts.
Direct side: the same params and data in a plain folder, the same six stage functions and
the same gate-and-deploy called one after another in this process.

Then the flow again with nothing changed (everything skipped), in-process with the server
up, and ``flywheel run`` from a shell as a user types it (its own ephemeral server, Python
start-up included). The Prefect server's start-up is timed apart: a long-lived server
(``flywheel up``) pays it once, not per run.

    python -m benchmarks.pipeline_overhead [--quick]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks import targets
from benchmarks.common import PROJECT, ratio, spread, write_result
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
    """A temporary Prefect server (SQLite) for flows run in this process; yields start-up s."""
    from prefect.testing.utilities import prefect_test_harness

    t0 = time.perf_counter()
    with prefect_test_harness(server_startup_timeout=180):
        yield round(time.perf_counter() - t0, 3)


def _warm_up() -> None:
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


def run(quick: bool, repeats: int) -> dict[str, Any]:
    overrides = QUICK_PARAMS if quick else {}
    scratch = Path(tempfile.mkdtemp(prefix="bench-overhead-"))
    _warm_up()
    directs: list[dict[str, Any]] = []
    flows: list[dict[str, Any]] = []
    out: dict[str, Any] = {"quick": quick, "params_overrides": overrides, "skipped": []}
    try:
        with prefect_server() as startup:
            out["prefect_server_startup_seconds"] = startup
            project = None
            for r in range(repeats):
                # Alternate which side goes first: the machine's load drifts over minutes.
                order = ("direct", "flow") if r % 2 == 0 else ("flow", "direct")
                for side in order:
                    if side == "direct":
                        folder = make_folder(scratch / f"direct-{r}", overrides, dvc=False)
                        directs.append(direct_run(folder))
                        print(f"overhead: direct run {directs[-1]['seconds']}s")
                    else:
                        project = make_folder(scratch / f"flow-{r}", overrides, dvc=True)
                        flows.append(flow_run(project))
                        print(f"overhead: flow run {flows[-1]['seconds']}s")
            assert project is not None
            rerun = flow_run(project)
            print(f"overhead: unchanged rerun (flow, server up) {rerun['seconds']}s")
        cli = cli_rerun(project, scratch / "prefect-home")
        print(f"overhead: unchanged rerun (flywheel run CLI) {cli['seconds']}s")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    out["process_startup_seconds"] = startup_costs()
    flow_s = spread(f["seconds"] for f in flows)
    direct_s = spread(d["seconds"] for d in directs)
    overhead = round(flow_s["median"] - direct_s["median"], 3)
    share = ratio(overhead, flow_s["median"])
    out.update(
        {
            "repeats": repeats,
            "flow_seconds": flow_s,
            "direct_seconds": direct_s,
            "flow_runs": flows,
            "direct_runs": directs,
            "overhead_seconds": overhead,
            "overhead_share_of_flow_run": share,
            "flow_vs_direct": ratio(flow_s["median"], direct_s["median"]),
            "stage_overhead_seconds": {
                name: round(
                    sum(f["stages"][name] for f in flows) / len(flows)
                    - sum(d["stages"][name] for d in directs) / len(directs),
                    3,
                )
                for name in directs[0]["stages"]
            },
            "unchanged_rerun_flow": rerun,
            "unchanged_rerun_cli": cli,
        }
    )
    out["targets"] = [
        targets.either(
            "Prefect flow overhead vs direct calls (share of the run / seconds)",
            targets.check("share", share, targets.OVERHEAD_SHARE),
            targets.check("seconds", overhead, targets.OVERHEAD_SECONDS),
        ),
        targets.check(
            "unchanged rerun, flow with the server up (s)",
            rerun["seconds"] if rerun["status"] == "nothing to do" else None,
            targets.RERUN_SECONDS,
        ),
        targets.check(
            "unchanged rerun, `flywheel run` from a shell (s)",
            cli["seconds"] if cli["nothing_to_do"] else None,
            targets.RERUN_SECONDS,
        ),
    ]
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny training settings, one repeat")
    parser.add_argument("--repeats", type=int, help="runs per side (default 1)")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads for both sides (0: torch's default)",
    )
    args = parser.parse_args(argv)
    if args.threads > 0:
        # Read by torch here, and inherited by the `flywheel run` the unchanged rerun starts.
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    # Offline and quiet, as the Makefile and the tests run Prefect and DVC.
    for key in ("PREFECT_SERVER_ANALYTICS_ENABLED", "DVC_NO_ANALYTICS", "DO_NOT_TRACK"):
        os.environ.setdefault(key, "false" if key.startswith("PREFECT") else "1")
    started = time.perf_counter()
    # A full-size run takes minutes per side: one each fits the suite's time budget.
    repeats = args.repeats or 1
    body = run(args.quick, repeats)
    body["threads"] = args.threads
    path = write_result("pipeline_overhead", body, started)
    print(f"written {path.relative_to(PROJECT)}")


if __name__ == "__main__":
    main()
