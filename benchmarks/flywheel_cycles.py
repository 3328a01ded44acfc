"""Does the flywheel turn? Consecutive cycles of '10 new images -> production' under
``flywheel up`` on the default data, with the project's own params.

A scratch git + DVC project (the default digits data, ``params.yaml`` as is) gets
``flywheel up --detach`` with its own Prefect server, exactly as a user starts it; the
startup run trains v0001. Then, ``--cycles`` times, ten new images are written into one
class and the clock runs until the production alias moves, or the run of that data ends
without moving it (refused by the gate, failed). Each cycle records whether it promoted,
the seconds from the last write to production, the run's final state, the deployed
variant and, for a refusal, the gate's reasons.

    python -m benchmarks.flywheel_cycles [--cycles 5] [--label 3] [--profile project|tiny]

Writes ``benchmarks/results/flywheel_cycles.json`` and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.trigger_latency import PROFILES, make_project, service_env

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "flywheel_cycles.json"
CYCLE_TIMEOUT_S = 1800.0
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def new_images(data: Path, label: int, cycle: int, count: int = 10) -> None:
    """``count`` digits of ``label`` never seen before: real images of that class, each
    shifted by 1..7 pixels (a shift of 8 would give back the original, which the suite
    rejects as a duplicate), distinct across cycles."""
    import numpy as np

    from flywheel.datasets.digits import digits_images
    from flywheel.datasets.png import encode_png

    pixels, labels = digits_images()
    images = pixels[labels == label]
    for i in range(count):
        k = cycle * count + i
        shift = 1 + (k // len(images)) % 7
        shifted = np.roll(images[k % len(images)], shift, axis=k % 2)
        (data / str(label) / f"cycle-{cycle}-{i:02d}.png").write_bytes(encode_png(shifted))


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> None:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")


def _run_of(api: Any, deployment_id: str, data_hash: str) -> dict[str, Any] | None:
    for run in api.flow_runs(deployment_id, 30):
        if (run.get("parameters") or {}).get("data_hash") == data_hash:
            return dict(run)
    return None


def _outcome(
    api: Any, deployment_id: str, data_hash: str, before: str | None, registry: Any
) -> Any:
    """(production moved, the run) once either the alias moved or the run ended."""
    if registry.production_version() != before:
        return True, _run_of(api, deployment_id, data_hash)
    run = _run_of(api, deployment_id, data_hash)
    if run is not None and (run.get("state") or {}).get("type") in TERMINAL:
        return False, run
    return None


def cycle(project: Path, api: Any, deployment_id: str, n: int, label: int) -> dict[str, Any]:
    from flywheel.datasets.hashing import data_hash
    from flywheel.release.registry import Registry

    registry = Registry(project / "registry")
    before = registry.production_version()
    new_images(project / "data", label, n)
    changed = time.time()
    current = data_hash(project / "data")
    deadline = time.monotonic() + CYCLE_TIMEOUT_S
    while (found := _outcome(api, deployment_id, current, before, registry)) is None:
        if time.monotonic() > deadline:
            raise SystemExit(f"cycle {n}: nothing happened within {CYCLE_TIMEOUT_S:.0f}s")
        time.sleep(0.2)
    promoted, run = found
    seconds = round(time.time() - changed, 1)
    while run is not None and (run.get("state") or {}).get("type") not in TERMINAL:
        time.sleep(0.5)  # the alias moved; the run still publishes its summary
        run = _run_of(api, deployment_id, current)
    card = registry.production()
    state = (run or {}).get("state") or {}
    return {
        "cycle": n,
        "promoted": promoted,
        "change_to_production_s": seconds if promoted else None,
        "run_state": state.get("name"),
        "run_message": state.get("message"),
        "production": registry.production_version(),
        "variant": card.variant if card and promoted else None,
        "size_kb": round(card.size_bytes / 1024, 1) if card and promoted else None,
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=5)
    parser.add_argument("--label", type=int, default=3)
    parser.add_argument("--profile", choices=sorted(PROFILES), default="project")
    return parser.parse_args()


def wait_for_startup(api: Any, dep_id: str, registry: Any) -> Any:
    """The card the startup run deployed, once every run it started has ended."""
    start = time.monotonic()
    while registry.production_version() is None:
        if time.monotonic() - start > CYCLE_TIMEOUT_S:
            raise SystemExit("the startup run deployed nothing")
        time.sleep(0.5)
    while not all(r["end_time"] for r in api.flow_runs(dep_id, 20)):
        time.sleep(0.5)
    return registry.production()


def run_cycles(profile: str, count: int, label: int) -> tuple[Any, list[dict[str, Any]]]:
    """(the startup run's production card, every cycle's record) from a scratch project
    under ``flywheel up``, which is brought down again whatever happens."""
    from flywheel.release.registry import Registry
    from flywheel.supervise.api import PrefectApi
    from flywheel.supervise.state import ServicePaths, read_state

    with tempfile.TemporaryDirectory(prefix="flywheel-cycles-") as tmp:
        project = Path(tmp) / "project"
        make_project(project, {k: dict(v) for k, v in PROFILES[profile].items()})
        env = service_env(tmp)
        flywheel = [sys.executable, "-m", "flywheel.cli"]
        _run([*flywheel, "up", "--detach", "--port", "0"], project, env)
        try:
            state = read_state(ServicePaths(project))
            assert state is not None
            with PrefectApi(state["api_url"]) as api:
                deployment = api.deployment(state["deployment"])
                assert deployment is not None
                dep_id = str(deployment["id"])
                first = wait_for_startup(api, dep_id, Registry(project / "registry"))
                cycles = [cycle(project, api, dep_id, n, label) for n in range(1, count + 1)]
        finally:
            _run([*flywheel, "down"], project, env)
    return first, cycles


def result_of(profile: str, cycles: list[dict[str, Any]], first: Any) -> dict[str, Any]:
    return {
        "profile": profile,
        "cycles": cycles,
        "promotions": sum(c["promoted"] for c in cycles),
        "startup_production": {"variant": first.variant if first else None},
        "machine": {
            "cpus": os.cpu_count(),
            "load_avg_1m_at_end": round(os.getloadavg()[0], 2),
            "python": platform.python_version(),
        },
    }


def print_table(result: dict[str, Any]) -> None:
    cycles = result["cycles"]
    print(
        f"promotions / cycles: {result['promotions']} / {len(cycles)} ({result['profile']} params)"
    )
    print("| cycle | promoted | change -> production s | run state | variant | KB |")
    print("|---|---|---|---|---|---|")
    for c in cycles:
        print(
            f"| {c['cycle']} | {c['promoted']} | {c['change_to_production_s']} | "
            f"{c['run_state']} | {c['variant']} | {c['size_kb']} |"
        )


def main() -> None:
    args = parse_args()
    first, cycles = run_cycles(args.profile, args.cycles, args.label)
    result = result_of(args.profile, cycles, first)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print_table(result)
    print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
