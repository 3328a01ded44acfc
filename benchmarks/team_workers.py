"""Team mode: two datasets changed at once, wall time with two workers vs one.

The team tests' rig (tests/integration/team_helpers.py, reused as is): a throwaway
PostgreSQL 15, a Prefect server on it, the retrain deployments of datasets X (``data``)
and Y (``dataY``) on a process work pool, two checkouts each with a ``flywheel worker``
(limit 1), the tiniest real params the team tests use (TEAM_PARAMS).

Each round changes X and Y at once (a new image in each, in every checkout, then one
flywheel.data.changed event each), first with both workers running, then with worker b
stopped. Wall time runs from just before the change to the later of the two runs' end
times (the server's own timestamps; client and server share this machine's clock). Each
run's start and end (seconds after the change) and the worker that ran it are kept, so
the overlap of the two runs shows whether they ran side by side.

    python -m benchmarks.team_workers [--repeats N]

Writes ``benchmarks/results/team_workers.json`` and prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.common import ratio, spread, write_result

if TYPE_CHECKING:
    from tests.integration.team_helpers import Team

X, Y = "flywheel-pipeline/retrain", "flywheel-pipeline/retrain-paramsY"
DATASETS = ((X, "data", "params.yaml", 1), (Y, "dataY", "paramsY.yaml", 2))
RUN_TIMEOUT = 900


def window(runs: Sequence[Mapping[str, Any]], changed_at: datetime) -> dict[str, Any]:
    """Wall time, per-run spans and overlap of runs that a change at ``changed_at``
    started; runs are run summaries (ISO ``start_time``/``end_time``, ``worker``)."""
    spans = []
    for run in runs:
        if not run.get("start_time") or not run.get("end_time"):
            raise ValueError(f"run {run.get('name')} has no start or end time: it did not run")
        start = datetime.fromisoformat(run["start_time"])
        end = datetime.fromisoformat(run["end_time"])
        spans.append((start, end, run))
    last_end = max(end for _, end, _ in spans)
    overlap = min(end for _, end, _ in spans) - max(start for start, _, _ in spans)
    return {
        "wall_s": round((last_end - changed_at).total_seconds(), 2),
        # Negative: the second run started that long after the first ended.
        "overlap_s": round(overlap.total_seconds(), 2),
        "busy_s": round(sum((end - start).total_seconds() for start, end, _ in spans), 2),
        "runs": [
            {
                "name": run.get("name"),
                "worker": run.get("worker"),
                "state": run.get("state_type"),
                "start_s": round((start - changed_at).total_seconds(), 2),
                "end_s": round((end - changed_at).total_seconds(), 2),
                "run_s": round((end - start).total_seconds(), 2),
            }
            for start, end, run in spans
        ],
    }


def summarise(rounds: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Wall-time spread per worker count and the ratio of the medians, 2 workers / 1."""
    walls: dict[int, list[float]] = {}
    for r in rounds:
        walls.setdefault(int(r["workers"]), []).append(float(r["wall_s"]))
    medians = {n: statistics.median(v) for n, v in walls.items()}
    return {
        "wall_s": {f"{n}-worker": spread(v) for n, v in sorted(walls.items())},
        "wall_ratio_2_vs_1": ratio(medians.get(2), medians.get(1), 3),
    }


def _heartbeat_after(team: Team, name: str, since: datetime) -> bool:
    from tests.integration.team_helpers import POOL

    for worker in team.api.workers(POOL):
        beat = worker.get("last_heartbeat_time")
        if worker["name"] == name and beat and datetime.fromisoformat(beat) > since:
            return True
    return False


def use_workers(team: Team, count: int) -> None:
    """Worker a always runs; worker b runs only when ``count`` is 2."""
    from tests.integration.service_helpers import wait_for

    b = team.workers["b"]
    running = b.proc is not None and b.proc.poll() is None
    if count == 1 and running:
        b.stop()
    elif count == 2 and not running:
        since = datetime.now(UTC)
        b.start()
        wait_for(lambda: _heartbeat_after(team, b.name, since), 180, "worker b back online")


def one_round(team: Team, workers: int, variant: int) -> dict[str, Any]:
    from tests.integration.team_helpers import change, deployment_runs, emit, wait_settled

    use_workers(team, workers)
    before = {name: len(deployment_runs(team.api, name)) for name, *_ in DATASETS}
    load_before = os.getloadavg()
    changed_at = datetime.now(UTC)
    digests = [change(team, folder, label, variant) for _, folder, _, label in DATASETS]
    for (_, _, params, _), digest in zip(DATASETS, digests, strict=True):
        emit(team, params, digest)
    runs = [
        wait_settled(team.api, name, before[name] + 1, RUN_TIMEOUT)[before[name]]
        for name, *_ in DATASETS
    ]
    failed = [r["name"] for r in runs if r["state_type"] != "COMPLETED"]
    if failed:
        logs = team.checkouts["a"].parents[1]
        raise RuntimeError(f"runs {failed} did not complete: see the logs under {logs}")
    return {
        "workers": workers,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        **window(runs, changed_at),
    }


def measure(repeats: int, root: Path) -> list[dict[str, Any]]:
    from tests.integration.team_helpers import team_up

    rounds = []
    with team_up(root) as team:
        for r in range(repeats):
            # Two workers first: team_up starts both, so the first round needs no restart.
            for workers in (2, 1):
                rounds.append(one_round(team, workers, 20 + 2 * r + (workers - 1)))
                print(f"round {r + 1}/{repeats}, {workers} worker(s): {rounds[-1]['wall_s']} s")
    return rounds


def table(rounds: Sequence[Mapping[str, Any]], summary: Mapping[str, Any]) -> list[str]:
    lines = [
        "| workers | wall s | overlap s | X: worker, start-end s | Y: worker, start-end s |",
        "|---|---|---|---|---|",
    ]
    for r in rounds:
        cells = [f"{run['worker']}, {run['start_s']}-{run['end_s']}" for run in r["runs"]]
        lines.append(f"| {r['workers']} | {r['wall_s']} | {r['overlap_s']} | {' | '.join(cells)} |")
    lines.append("")
    lines.append(f"wall time ratio 2 workers / 1 worker (medians): {summary['wall_ratio_2_vs_1']}")
    return lines


def main() -> None:
    from tests.integration import postgres
    from tests.integration.team_helpers import TEAM_PARAMS

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be at least 1 (rounds of 2 workers then 1)")
    if not postgres.available():
        raise SystemExit("PostgreSQL 15 is not installed: apt-get install postgresql-15")
    started = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="flywheel-team-workers-"))
    rounds = measure(args.repeats, root)
    # Kept when a round fails: the server's and workers' logs are in there.
    shutil.rmtree(root, ignore_errors=True)
    summary = summarise(rounds)
    body = {
        "repeats": args.repeats,
        "cpu_count": os.cpu_count(),
        "params": TEAM_PARAMS,
        "rounds": rounds,
        **summary,
    }
    path = write_result("team_workers", body, started)
    print("\n".join(table(rounds, summary)))
    print(f"written to {path}")


if __name__ == "__main__":
    main()
