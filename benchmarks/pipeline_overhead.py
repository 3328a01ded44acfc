"""Pipeline overhead: the Prefect flow end to end vs the same stages called directly, and vs
``dvc repro`` of the same stages from a shell, side by side in one run.

Flow side: a fresh git + DVC project holding the default dataset and params (as
``tests/integration`` builds one), run through ``flows.pipeline.pipeline`` against a
temporary Prefect server: snapshot, plan (``dvc status``), one task per stage (DVC's
skip/run-cache/lock bookkeeping around the stage function, in the flow's process), the
validated data recorded with ``dvc add``, gate, deploy and the artifacts.
Direct side: the same params and data in a plain folder, the same six stage functions and
the same gate-and-deploy called one after another in this process.
``dvc repro`` side: another such project, ``dvc repro`` started from a shell; DVC runs each
stage's ``cmd`` (``flywheel stage <name>``) in a new process (no gate, no deploy).
The sides take turns (the machine's load drifts over minutes).

Then the flow again with nothing changed (everything skipped), in-process with the server
up, and ``flywheel run`` from a shell as a user types it (its own ephemeral server, Python
start-up included). The Prefect server's start-up is timed apart: a long-lived server
(``flywheel up``) pays it once, not per run.

    python -m benchmarks.pipeline_overhead [--quick] [--repeats N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import targets
from benchmarks.common import PROJECT, ratio, spread, write_result
from benchmarks.pipeline_sides import (
    QUICK_PARAMS,
    cli_rerun,
    direct_run,
    dvc_repro_run,
    flow_run,
    make_folder,
    prefect_server,
    startup_costs,
    warm_up,
)

SIDES = ("direct", "flow", "dvc_repro")


def _one_side(side: str, scratch: Path, r: int, overrides: dict[str, Any]) -> dict[str, Any]:
    folder = make_folder(scratch / f"{side}-{r}", overrides, dvc=side != "direct")
    run = {"direct": direct_run, "flow": flow_run, "dvc_repro": dvc_repro_run}[side](folder)
    run["folder"] = str(folder)
    print(f"overhead: {side} run {run['seconds']}s")
    return run


def _measure(scratch: Path, overrides: dict[str, Any], repeats: int) -> dict[str, Any]:
    runs: dict[str, list[dict[str, Any]]] = {side: [] for side in SIDES}
    out: dict[str, Any] = {}
    with prefect_server() as startup:
        out["prefect_server_startup_seconds"] = startup
        for r in range(repeats):
            order = SIDES[r % 3 :] + SIDES[: r % 3]
            for side in order:
                runs[side].append(_one_side(side, scratch, r, overrides))
        project = Path(runs["flow"][-1].pop("folder"))
        rerun = flow_run(project)
        print(f"overhead: unchanged rerun (flow, server up) {rerun['seconds']}s")
    cli = cli_rerun(project, scratch / "prefect-home")
    print(f"overhead: unchanged rerun (flywheel run CLI) {cli['seconds']}s")
    for side_runs in runs.values():
        for run in side_runs:
            run.pop("folder", None)
    return {**out, "runs": runs, "unchanged_rerun_flow": rerun, "unchanged_rerun_cli": cli}


def _stage_overhead(flows: list[dict[str, Any]], directs: list[dict[str, Any]]) -> dict[str, float]:
    return {
        name: round(
            sum(f["stages"][name] for f in flows) / len(flows)
            - sum(d["stages"][name] for d in directs) / len(directs),
            3,
        )
        for name in directs[0]["stages"]
    }


def _targets(out: dict[str, Any]) -> list[dict[str, Any]]:
    rerun, cli = out["unchanged_rerun_flow"], out["unchanged_rerun_cli"]
    return [
        targets.check(
            "Prefect flow overhead vs direct stage calls (s)",
            out["overhead_seconds"],
            targets.OVERHEAD_SECONDS,
        ),
        targets.check(
            "flow run vs `dvc repro` of the same stages from a shell (ratio)",
            out["flow_vs_dvc_repro"],
            targets.FLOW_VS_DVC_REPRO,
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


def run(quick: bool, repeats: int) -> dict[str, Any]:
    overrides = QUICK_PARAMS if quick else {}
    scratch = Path(tempfile.mkdtemp(prefix="bench-overhead-"))
    warm_up()
    out: dict[str, Any] = {"quick": quick, "params_overrides": overrides, "skipped": []}
    try:
        measured = _measure(scratch, overrides, repeats)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    runs = measured.pop("runs")
    out.update(measured)
    out["process_startup_seconds"] = startup_costs()
    flows, directs, repros = runs["flow"], runs["direct"], runs["dvc_repro"]
    flow_s = spread(f["seconds"] for f in flows)
    direct_s = spread(d["seconds"] for d in directs)
    repro_s = spread(d["seconds"] for d in repros)
    overhead = round(flow_s["median"] - direct_s["median"], 3)
    out.update(
        {
            "repeats": repeats,
            "flow_seconds": flow_s,
            "direct_seconds": direct_s,
            "dvc_repro_seconds": repro_s,
            "flow_runs": flows,
            "direct_runs": directs,
            "dvc_repro_runs": repros,
            "overhead_seconds": overhead,
            "overhead_share_of_flow_run": ratio(overhead, flow_s["median"]),
            "flow_vs_direct": ratio(flow_s["median"], direct_s["median"]),
            "flow_vs_dvc_repro": ratio(flow_s["median"], repro_s["median"]),
            "stage_overhead_seconds": _stage_overhead(flows, directs),
        }
    )
    out["targets"] = _targets(out)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny training settings, one repeat")
    parser.add_argument("--repeats", type=int, help="runs per side (default 1)")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads for every side (0: torch's default)",
    )
    args = parser.parse_args(argv)
    if args.threads > 0:
        # Read by torch here, and inherited by `dvc repro`'s stages and `flywheel run`.
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
