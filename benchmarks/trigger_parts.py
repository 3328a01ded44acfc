"""One data change timed under ``flywheel up``, split into its parts with the Prefect
server's own records (see :mod:`benchmarks.trigger_latency`), and the idle cost."""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

RUN_TIMEOUT_S = 1800.0


def new_images(data: Path, label: int, tag: int, count: int = 10) -> None:
    import numpy as np

    from flywheel.datasets.digits import digits_images
    from flywheel.datasets.png import encode_png

    pixels, labels = digits_images()
    for i, image in enumerate(pixels[labels == label][:count]):
        shifted = np.roll(image, 1 + tag, axis=1)
        (data / str(label) / f"bench-{tag}-{i:02d}.png").write_bytes(encode_png(shifted))


def wait_for(predicate: Any, timeout: float, what: str, interval: float = 0.1) -> Any:
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


def served_version(port: int) -> str | None:
    """The version the model server answers with now (None while it answers nothing)."""
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/model", timeout=2) as resp:
            return str(json.loads(resp.read())["version"])
    except (OSError, ValueError, KeyError):
        return None


def run_parts(run: dict[str, Any], tasks: list[dict[str, Any]]) -> dict[str, Any]:
    """The run's own split from its task runs: set-up before the first stage (process
    start, imports, prepare, snapshot, plan), each stage, and the flow's time between."""
    from flywheel.stages import NAMES

    started = _ts(run["start_time"])
    spans = {
        t["name"].split("-")[0] if t["name"].split("-")[0] in NAMES else t["name"]: t
        for t in tasks
        if t.get("start_time") and t.get("end_time")
    }
    stages = {
        name: round(_ts(spans[name]["end_time"]) - _ts(spans[name]["start_time"]), 2)
        for name in NAMES
        if name in spans
    }
    first = min((_ts(spans[n]["start_time"]) for n in stages), default=started)
    return {"setup_s": round(first - started, 2), "stages_s": stages}


def wait_for_outcome(
    registry: Any, before: str | None, api: Any, deployment_id: str, changed: float
) -> dict[str, Any] | None:
    """None once production moves; the run, when the run of this change ended Refused."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    next_look = 0.0
    while time.monotonic() < deadline:
        if registry.production_version() != before:
            return None
        if time.monotonic() >= next_look:  # the server: once a second, the alias: often
            next_look = time.monotonic() + 1.0
            for run in api.flow_runs(deployment_id, 5):
                state = run.get("state") or {}
                after = _ts(run["expected_start_time"]) >= changed
                refused = run.get("end_time") and state.get("name") == "Refused"
                if refused and after and registry.production_version() == before:
                    return dict(run)
        time.sleep(0.05)
    raise SystemExit(f"timed out after {RUN_TIMEOUT_S:.0f}s waiting for a new production")


def _refusal(run: dict[str, Any], changed: float) -> dict[str, Any]:
    """The gate kept production (a normal outcome): timed, but not a change -> production."""
    state = run.get("state") or {}
    return {
        "outcome": "refused",
        "run_end_s": round(_ts(run["end_time"]) - changed, 2),
        "reason": str(state.get("message", ""))[:400],
    }


def measure_change(
    project: Path, api: Any, deployment_id: str, label: int, port: int
) -> dict[str, Any]:
    from flywheel.release.registry import Registry

    registry = Registry(project / "registry")
    before = registry.production_version()
    new_images(project / "data", label, tag=label)
    changed = time.time()
    refused = wait_for_outcome(registry, before, api, deployment_id, changed)
    if refused is not None:
        return _refusal(refused, changed)
    live = time.time()
    version = registry.production_version()
    wait_for(lambda: served_version(port) == version, 120, "the model server to swap", 0.02)
    swapped = time.time()
    card = registry.production()
    assert card is not None
    run_id = str(card.run.get("flow_run_id", ""))
    run = wait_for(
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
    tasks = api.task_runs(run_id)
    deploy = next(t for t in tasks if t["name"].startswith("gate-and-deploy"))
    occurred, started = _ts(event["occurred"]), _ts(run["start_time"])
    deploy_start = _ts(deploy["start_time"])
    parts = run_parts(run, tasks)
    pipeline_s = deploy_start - started
    return {
        "outcome": "promoted",
        "version": version,
        "total_s": round(swapped - changed, 2),
        "debounce_s": round(occurred - changed, 2),
        "queueing_s": round(started - occurred, 2),
        "pipeline_s": round(pipeline_s, 2),
        "setup_s": parts["setup_s"],
        "stages_sum_s": round(sum(parts["stages_s"].values()), 2),
        "between_stages_s": round(
            pipeline_s - parts["setup_s"] - sum(parts["stages_s"].values()), 2
        ),
        "promotion_s": round(live - deploy_start, 2),
        "replica_swap_s": round(swapped - live, 2),
        "stages_s": parts["stages_s"],
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
