"""Trigger latency: seconds from a data change to the new model in production, and what
the idle ``flywheel up`` processes cost.

A scratch git + DVC project (the default digits data) gets ``flywheel up --detach`` on a
free loopback port with its own Prefect server (SQLite in a temporary PREFECT_HOME), exactly
as a user starts it. The startup run trains v0001 (the data is unknown to production).
Then, ``--repeats`` times, ten new images are written into one class and the clock runs
until the production alias moves; each interval is split with the server's own records:

    debounce   last write -> event occurred  (quiet period, DVC hash, confirmed delivery)
    queueing   event -> flow run Running     (trigger, run creation, runner poll, process start)
    pipeline   Running -> gate-and-deploy starts (snapshot, DVC stages)
    promotion  gate-and-deploy start -> production alias moved (gate, register, promote)

Idle cost: CPU % (over ``--idle-seconds``) and RSS of the supervisor, the server, the serve
process and the watcher, each with its descendants, after everything has settled.

    python -m benchmarks.trigger_latency [--profile tiny|project] [--repeats 3] [--debounce S]

``tiny`` trains for a few batches (the integration tests' settings), so the figures show
the orchestration overhead around a short pipeline; ``project`` uses params.yaml as is.
Writes ``benchmarks/results/trigger_latency.json`` and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from flywheel.pipeline.dvc import init_repository

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent
RESULTS = HERE / "results" / "trigger_latency.json"
RUN_TIMEOUT_S = 1800.0

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


def new_images(data: Path, label: int, tag: int, count: int = 10) -> None:
    import numpy as np

    from flywheel.datasets.digits import digits_images
    from flywheel.datasets.png import encode_png

    pixels, labels = digits_images()
    for i, image in enumerate(pixels[labels == label][:count]):
        shifted = np.roll(image, 1 + tag, axis=1)
        (data / str(label) / f"bench-{tag}-{i:02d}.png").write_bytes(encode_png(shifted))


def _wait(predicate: Any, timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def _ts(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


def measure_change(project: Path, api: Any, deployment_id: str, label: int) -> dict[str, Any]:
    from flywheel.release.registry import Registry

    registry = Registry(project / "registry")
    before = registry.production_version()
    new_images(project / "data", label, tag=label)
    changed = time.time()
    _wait(lambda: registry.production_version() != before, RUN_TIMEOUT_S, "a new production")
    live = time.time()
    version = registry.production_version()
    card = registry.production()
    assert card is not None
    run_id = str(card.run.get("flow_run_id", ""))
    run = _wait(
        lambda: next(
            (r for r in api.flow_runs(deployment_id, 20) if r["id"] == run_id and r["end_time"]),
            None,
        ),
        600,
        "the run to finish",
        0.5,
    )
    event = next(
        e
        for e in api.events("flywheel.data.changed")
        if e["payload"].get("data_hash") == run["parameters"].get("data_hash")
    )
    deploy = next(t for t in api.task_runs(run_id) if t["name"].startswith("gate-and-deploy"))
    occurred, started = _ts(event["occurred"]), _ts(run["start_time"])
    deploy_start = _ts(deploy["start_time"])
    return {
        "version": version,
        "total_s": round(live - changed, 2),
        "debounce_s": round(occurred - changed, 2),
        "queueing_s": round(started - occurred, 2),
        "pipeline_s": round(deploy_start - started, 2),
        "promotion_s": round(live - deploy_start, 2),
    }


def idle_usage(state: dict[str, Any], seconds: float) -> dict[str, Any]:
    """CPU % over ``seconds`` and RSS of each supervised role, descendants included."""
    import psutil

    roles = {"supervisor": [psutil.Process(int(state["pid"]))]}
    for name, child in state["children"].items():
        proc = psutil.Process(int(child["pid"]))
        roles[name] = [proc, *proc.children(recursive=True)]
    for group in roles.values():
        for proc in group:
            proc.cpu_percent(None)
    time.sleep(seconds)
    usage: dict[str, dict[str, float]] = {}
    for name, group in roles.items():
        alive = [p for p in group if p.is_running()]
        usage[name] = {
            "processes": len(alive),
            "cpu_percent": round(sum(p.cpu_percent(None) for p in alive), 2),
            "rss_mb": round(sum(p.memory_info().rss for p in alive) / 2**20, 1),
        }
    usage["total"] = {
        key: round(sum(u[key] for u in usage.values()), 2)
        for key in ("processes", "cpu_percent", "rss_mb")
    }
    return {"window_s": seconds, "by_process": usage}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="tiny")
    parser.add_argument("--repeats", type=int, default=3)
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


def run_service(
    overrides: dict[str, dict[str, Any]], repeats: int, idle_s: float
) -> tuple[Any, dict[str, float], list[dict[str, Any]], dict[str, Any]]:
    """(debounce setting, start-up seconds, samples, idle cost) from a scratch project under
    ``flywheel up``, which is brought down again whatever happens."""
    from flywheel.supervise.api import PrefectApi
    from flywheel.supervise.state import ServicePaths, read_state

    with tempfile.TemporaryDirectory(prefix="flywheel-trigger-") as tmp:
        project = Path(tmp) / "project"
        make_project(project, overrides)
        debounce = yaml.safe_load((project / "params.yaml").read_text())["schedule"]["debounce_s"]
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
                _wait(registry.production_version, RUN_TIMEOUT_S, "the startup run", 0.5)
                first_model_s = round(time.time() - started, 1)
                _wait(
                    lambda: all(r["end_time"] for r in api.flow_runs(dep_id, 20)),
                    600,
                    "the startup run to finish",
                    0.5,
                )
                samples = [
                    measure_change(project, api, dep_id, label=1 + i) for i in range(repeats)
                ]
                time.sleep(5)  # let the last run's process exit before measuring idle cost
                idle = idle_usage(state, idle_s)
        finally:
            _run([*flywheel, "down"], project, env)
    startup = {"up_detach_ready_s": startup_s, "first_model_in_production_s": first_model_s}
    return debounce, startup, samples, idle


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
    args = parse_args()
    overrides = {k: dict(v) for k, v in PROFILES[args.profile].items()}
    if args.debounce is not None:
        overrides["schedule"] = {"debounce_s": args.debounce}
    debounce, startup, samples, idle = run_service(overrides, args.repeats, args.idle_seconds)
    keys = ("total_s", "debounce_s", "queueing_s", "pipeline_s", "promotion_s")
    result = {
        "profile": args.profile,
        "debounce_setting_s": debounce,
        "repeats": args.repeats,
        "machine": {
            "cpus": os.cpu_count(),
            "load_avg_1m_at_end": round(os.getloadavg()[0], 2),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "startup": startup,
        "samples": samples,
        "median": {k: round(statistics.median(s[k] for s in samples), 2) for k in keys},
        "idle": idle,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print_tables(result)
    print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
