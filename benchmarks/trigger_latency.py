"""Trigger latency: seconds from a data change to the new model in production, and what
the idle ``flywheel up`` processes cost.

A scratch git + DVC project (the default digits data, ``params.yaml`` as is) gets
``flywheel up --detach`` with its own Prefect server (SQLite in a temporary PREFECT_HOME) and
model server on free loopback ports, exactly as a user starts it. The startup run trains
v0001. Then, ``--repeats`` times, ten new images are written into one class and the clock
runs until the model server answers with the new version; each interval is split with the
server's own records:

    debounce      last write -> event occurred (quiet period, DVC hash, confirmed delivery)
    queueing      event -> flow run Running (trigger, run creation, runner poll)
    pipeline      Running -> gate-and-deploy starts, of which
      setup         Running -> first stage (process start, imports, prepare, snapshot, plan)
      stages        each DVC stage task, start to end
      between       the flow's own time between stages (records, artifacts)
    promotion     gate-and-deploy start -> production alias moved (gate, register, promote)
    replica swap  alias moved -> the model server answers with the new version

Idle cost: CPU % (over ``--idle-seconds``) and RSS of the supervisor, the server, the serve
process and the watcher, each with its descendants, after everything has settled.

    python -m benchmarks.trigger_latency [--quick] [--profile project|tiny] [--repeats 5]

``tiny`` trains for a few batches (the integration tests' settings), to show the
orchestration around a short pipeline. Writes ``benchmarks/results/trigger_latency.json``
and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from benchmarks.common import write_result
from benchmarks.serving_servers import free_port
from benchmarks.targets import CHANGE_TO_PRODUCTION_S, check
from benchmarks.trigger_parts import RUN_TIMEOUT_S, idle_usage, measure_change, wait_for
from flywheel.pipeline.dvc import init_repository

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent

PROFILES: dict[str, dict[str, dict[str, Any]]] = {
    "tiny": {
        "train": {"max_epochs": 2, "patience": 1, "limit_batches": 8},
        "compress": {"variants": ["fp32"], "finetune_epochs": 0, "calibration_samples": 32},
        "evaluate": {"latency_runs": 5, "warmup_runs": 1, "throughput_runs": 1},
        "gate": {
            "min_accuracy": 0.3,
            "tolerance": 1.0,
            "max_latency_ratio": 1000.0,
            "max_size_ratio": 1000.0,
        },
    },
    "project": {},
}


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def make_project(root: Path, overrides: dict[str, dict[str, Any]]) -> None:
    from flywheel.core.config import load_params
    from flywheel.core.layout import Layout
    from flywheel.datasets.digits import materialise_digits
    from flywheel.stages.validate.suite import save_suite

    root.mkdir(parents=True)
    shutil.copy(PROJECT / "dvc.yaml", root / "dvc.yaml")
    raw = yaml.safe_load((PROJECT / "params.yaml").read_text())
    for section, values in overrides.items():
        raw.setdefault(section, {}).update(values)
    raw.setdefault("paths", {})["code"] = str(PROJECT / "src" / "flywheel")
    (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    init_repository(root, author="bench")
    materialise_digits(root / "data")
    params = load_params(root / "params.yaml")
    save_suite(params, Layout.from_params(params, root))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="project")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="two changes instead of five")
    parser.add_argument("--debounce", type=float, default=None, help="default: params.yaml's")
    parser.add_argument("--idle-seconds", type=float, default=30.0)
    return parser.parse_args()


def service_env(tmp: str) -> dict[str, str]:
    """This process's environment less the caller's Prefect server and Flywheel settings,
    with a Prefect home in ``tmp``: the scratch project's service is its own."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PREFECT_API_URL", "PREFECT_HOME") and not k.startswith("FLYWHEEL_")
    }
    env |= {
        "PREFECT_HOME": str(Path(tmp) / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    return env


def changes(project: Path, api: Any, dep_id: str, port: int, repeats: int) -> list[Any]:
    """Changes until ``repeats`` of them reached production (the gate may refuse one: it is
    kept, as a refusal), at most twice as many changes in all."""
    samples: list[dict[str, Any]] = []
    for i in range(2 * repeats):
        samples.append(measure_change(project, api, dep_id, 1 + i % 9, port))
        print(json.dumps(samples[-1]), flush=True)
        if sum(s["outcome"] == "promoted" for s in samples) == repeats:
            break
    return samples


def run_service(
    overrides: dict[str, dict[str, Any]], repeats: int, idle_s: float
) -> tuple[Any, dict[str, float], list[dict[str, Any]], dict[str, Any]]:
    """(debounce setting, start-up seconds, samples, idle cost) from a scratch project under
    ``flywheel up``, which is brought down again whatever happens."""
    from flywheel.core.config import load_params
    from flywheel.supervise.api import PrefectApi
    from flywheel.supervise.state import ServicePaths, read_state

    with tempfile.TemporaryDirectory(prefix="flywheel-trigger-") as tmp:
        project = Path(tmp) / "project"
        port = free_port()
        make_project(project, {**overrides, "serve": {"port": port}})
        debounce = load_params(project / "params.yaml").schedule.debounce_s
        env = service_env(tmp)
        flywheel = [sys.executable, "-m", "flywheel.cli"]
        started = time.time()
        _run([*flywheel, "up", "--detach", "--port", "0"], project, env)
        startup_s = round(time.time() - started, 1)
        try:
            state = read_state(ServicePaths(project))
            assert state is not None
            with PrefectApi(state["api_url"]) as api:
                deployment = api.deployment(state["deployment"])
                assert deployment is not None
                dep_id = str(deployment["id"])
                from flywheel.release.registry import Registry

                registry = Registry(project / "registry")
                wait_for(registry.production_version, RUN_TIMEOUT_S, "the startup run", 0.5)
                first_model_s = round(time.time() - started, 1)
                wait_for(
                    lambda: all(r["end_time"] for r in api.flow_runs(dep_id, 20)),
                    600,
                    "the startup run to finish",
                    0.5,
                )
                samples = changes(project, api, dep_id, port, repeats)
                time.sleep(5)  # let the last run's process exit before measuring idle cost
                idle = idle_usage(state, idle_s)
        finally:
            _run([*flywheel, "down"], project, env)
    startup = {"up_detach_ready_s": startup_s, "first_model_in_production_s": first_model_s}
    return debounce, startup, samples, idle


def _median(samples: list[dict[str, Any]]) -> float:
    return round(statistics.median(s["total_s"] for s in samples), 2)


def print_tables(result: dict[str, Any]) -> None:
    title = f"data change -> production ({result['profile']}, median of {result['repeats']})"
    print(f"| {title} | seconds |")
    print("|---|---|")
    for k, median in result["median"].items():
        print(f"| {k.removesuffix('_s')} | {median} |")
    print()
    print("| idle process | CPU % | RSS MB |")
    print("|---|---|---|")
    for name, usage in result["idle"]["by_process"].items():
        print(f"| {name} | {usage['cpu_percent']} | {usage['rss_mb']} |")


def main() -> None:
    started = time.perf_counter()
    args = parse_args()
    overrides = {k: dict(v) for k, v in PROFILES[args.profile].items()}
    if args.debounce is not None:
        overrides["schedule"] = {"debounce_s": args.debounce}
    repeats = 2 if args.quick else args.repeats
    debounce, startup, samples, idle = run_service(overrides, repeats, args.idle_seconds)
    promoted = [s for s in samples if s["outcome"] == "promoted"]
    if not promoted:
        raise SystemExit(f"the gate refused every change: {samples}")
    keys = (
        "total_s",
        "debounce_s",
        "queueing_s",
        "pipeline_s",
        "setup_s",
        "stages_sum_s",
        "between_stages_s",
        "promotion_s",
        "replica_swap_s",
    )
    result = {
        "profile": args.profile,
        "debounce_setting_s": debounce,
        "repeats": repeats,
        "startup": startup,
        "samples": samples,
        "refused": sum(s["outcome"] == "refused" for s in samples),
        "median": {k: round(statistics.median(s[k] for s in promoted), 2) for k in keys},
        "median_stages_s": {
            name: round(statistics.median(s["stages_s"].get(name, 0.0) for s in promoted), 2)
            for name in promoted[0]["stages_s"]
        },
        "targets": [
            check(
                "data change -> new model served, `flywheel up`, default data (median s)",
                _median(promoted),
                CHANGE_TO_PRODUCTION_S,
            )
        ],
        "idle": idle,
    }
    path = write_result("trigger_latency", result, started)
    print_tables(result)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
