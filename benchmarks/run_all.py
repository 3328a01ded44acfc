"""``make bench``: every benchmark in a process of its own, then ``benchmarks/REPORT.md``.

Each benchmark runs as ``python -m benchmarks.<name>`` (the serving benchmark as its own
script with its own flags), so one that fails or overruns its time limit leaves the others'
results standing; the report says which ran, how long each took and with what exit code.

    python -m benchmarks.run_all [--quick] [--only inference,training] [--skip serving]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import PROJECT, RESULTS

# name -> (command after the interpreter, time limit in seconds for a full run)
BENCHMARKS: dict[str, tuple[list[str], int]] = {
    "inference": (["-m", "benchmarks.inference"], 1500),
    # After inference: it compares with the sentiment model that run brought up to date.
    "optimum_peer": (["-m", "benchmarks.optimum_peer"], 2400),
    "training": (["-m", "benchmarks.training"], 900),
    "pipeline_overhead": (["-m", "benchmarks.pipeline_overhead"], 1200),
    "validation_throughput": (["-m", "benchmarks.validation_throughput"], 600),
    # `flywheel up` on a scratch project: five data changes to the new model served.
    "trigger_latency": (["-m", "benchmarks.trigger_latency"], 900),
    "serving": (["-m", "benchmarks.serving_bench"], 600),
    # Builds BentoML's own environment on its first run (about a minute, from the registry).
    "serving_protocols": (["-m", "benchmarks.serving_protocols"], 1500),
}
RUNS_FILE = RESULTS / "run_all.json"


def command(name: str, quick: bool) -> list[str]:
    args, _ = BENCHMARKS[name]
    return [sys.executable, *args, *(["--quick"] if quick else [])]


def run_one(name: str, quick: bool) -> dict[str, Any]:
    cmd = command(name, quick)
    limit = BENCHMARKS[name][1]
    print(f"\n=== {name}: {' '.join(Path(c).name if '/' in c else c for c in cmd)}", flush=True)
    env = {
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DVC_NO_ANALYTICS": "1",
        "DO_NOT_TRACK": "1",
        **os.environ,
        "PYTHONUNBUFFERED": "1",
    }
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=PROJECT, env=env, timeout=limit, check=False)
        code: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        code = None
        print(f"=== {name}: stopped after its {limit} s limit", flush=True)
    return {
        "returncode": code,
        "status": "ok" if code == 0 else ("timed out" if code is None else "failed"),
        "seconds": round(time.perf_counter() - t0, 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: a few minutes in all")
    parser.add_argument("--only", help=f"comma-separated subset of {', '.join(BENCHMARKS)}")
    parser.add_argument("--skip", help="comma-separated benchmarks not to run")
    args = parser.parse_args(argv)
    names = args.only.split(",") if args.only else list(BENCHMARKS)
    skipped = set(args.skip.split(",")) if args.skip else set()
    unknown = sorted((set(names) | skipped) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmarks {unknown}; choose from {list(BENCHMARKS)}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    runs: dict[str, Any] = {}
    for name in names:
        if name not in skipped:
            runs[name] = run_one(name, args.quick)
    RUNS_FILE.write_text(
        json.dumps(
            {
                "quick": args.quick,
                "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "seconds": round(time.perf_counter() - started, 1),
                "runs": runs,
            },
            indent=2,
        )
        + "\n"
    )
    from benchmarks.report import main as write_report

    write_report()
    failed = [n for n, r in runs.items() if r["status"] != "ok"]
    total = round(time.perf_counter() - started)
    print(f"\nbenchmarks done in {total} s" + (f"; failed: {', '.join(failed)}" if failed else ""))
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
