"""Team mode figures: event -> run latency on PostgreSQL vs SQLite, and data-parallel
training on 2 CPU processes vs 1.

    latency  A Prefect server on each database (SQLite in a temporary PREFECT_HOME; a
             throwaway PostgreSQL 15 on loopback, the tests' rig), the retrain deployment
             registered on a work pool with its trigger (python -m flows.pool), then
             ``--events`` flywheel.data.changed events, one at a time: seconds from the
             event's ``occurred`` to the flow run the trigger created (the server's own
             timestamps). No worker takes the runs: this is the part that depends on the
             database; a worker adds its poll (PREFECT_WORKER_QUERY_SECONDS=2) on top.
    ddp      The train stage on the default digits data with train.devices 1 and 2 (same
             seed, epochs and global batch): seconds, samples/s, test accuracy.

    python -m benchmarks.team [--events 10] [--epochs 8] [--skip latency|ddp]

Writes ``benchmarks/results/team.json`` and prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from benchmarks.common import ratio, spread, write_result
from benchmarks.trigger_latency import make_project

PROJECT = Path(__file__).resolve().parents[1]


def _event_latencies(api_url: str, project: Path, events: int) -> list[float]:
    from flywheel.core.workspace import open_workspace
    from flywheel.pipeline.names import full_name
    from flywheel.supervise.api import PrefectApi, parse_time
    from flywheel.triggers.events import emit_data_changed

    ws = open_workspace(project / "params.yaml", project)
    out = []
    with PrefectApi(api_url) as api:
        deployment = api.deployment(full_name(ws))
        assert deployment is not None
        for _ in range(events):
            digest = uuid.uuid4().hex + ".dir"  # a new version each time: one run each
            sent = datetime.now(UTC)
            emit_data_changed(ws, digest, None, {}, api_url=api_url)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                runs = api.flow_runs(str(deployment["id"]), limit=50)
                run = next((r for r in runs if r["parameters"].get("data_hash") == digest), None)
                if run is not None:
                    break
                time.sleep(0.05)
            else:
                raise RuntimeError("the trigger created no run within 120 s")
            # The event's own ``occurred`` is stamped by emit_data_changed on this clock,
            # the same machine's as the server's.
            created = parse_time(run["created"])
            assert created is not None
            out.append((created - sent).total_seconds())
    return out


def latency(database: str, events: int, root: Path) -> dict[str, Any]:
    from tests.integration import postgres  # the tests' throwaway cluster, reused as is

    from flywheel.supervise.ports import free_port
    from flywheel.supervise.prefect_server import api_url, server_command, server_env, wait_healthy
    from flywheel.supervise.supervisor import terminate_group

    pg = (
        postgres.start_postgres(Path(tempfile.mkdtemp(prefix="flywheel-pg-")))
        if database == "postgresql"
        else None
    )
    home, port = root / f"home-{database}", free_port()
    home.mkdir(parents=True)
    started = time.perf_counter()
    proc = subprocess.Popen(
        server_command("127.0.0.1", port),
        env=server_env(home, "127.0.0.1", port, pg.url if pg else None),
        stdout=(home / "server.log").open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    api = api_url("127.0.0.1", port)
    try:
        wait_healthy(api, 300, proc)
        healthy_s = time.perf_counter() - started
        project = root / f"project-{database}"
        make_project(project, {})
        shutil.copytree(PROJECT / "flows", project / "flows")
        env = {**os.environ, "PREFECT_API_URL": api, "PREFECT_HOME": str(home)}
        subprocess.run(
            [sys.executable, "-m", "flows.pool", "--pool", "bench", "--once"],
            cwd=project,
            env=env,
            check=True,
            capture_output=True,
            timeout=300,
        )
        values = _event_latencies(api, project, events)
    finally:
        terminate_group(proc.pid, 15, proc)
        if pg is not None:
            pg.stop()
    return {
        "server_healthy_s": round(healthy_s, 1),
        "event_to_run_s": spread(values),
        "raw": values,
    }


def ddp(epochs: int, root: Path) -> dict[str, Any]:
    from flywheel.core.workspace import open_workspace
    from flywheel.datasets.digits import materialise_digits
    from flywheel.families.image.manifest import build_manifest
    from flywheel.stages import preprocess, train

    out = {}
    for devices in (1, 2):
        ws_root = root / f"ddp-{devices}"
        ws_root.mkdir(parents=True)
        shutil.copy(PROJECT / "dvc.yaml", ws_root / "dvc.yaml")
        raw = yaml.safe_load((PROJECT / "params.yaml").read_text())
        raw["train"] = {
            **(raw.get("train") or {}),
            "max_epochs": epochs,
            "patience": epochs,
            "devices": devices,
        }
        (ws_root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
        ws = open_workspace(ws_root / "params.yaml", ws_root)
        materialise_digits(ws.layout.data)
        ws.layout.accepted_manifest.parent.mkdir(parents=True, exist_ok=True)
        build_manifest(ws.layout.data)[["path", "label", "sha256"]].to_csv(
            ws.layout.accepted_manifest, index=False
        )
        preprocess.run(ws.params, ws.layout)
        wall = time.perf_counter()
        metrics = train.run(ws.params, ws.layout)
        out[f"{devices}-process"] = {
            "stage_wall_s": round(time.perf_counter() - wall, 1),
            "fit_s": metrics["seconds"],
            "samples_per_s": metrics["samples_per_s"],
            "test_accuracy": metrics.get("test_accuracy"),
            "processes": metrics["processes"],
        }
    out["samples_per_s_ratio_2_vs_1"] = ratio(
        out["2-process"]["samples_per_s"], out["1-process"]["samples_per_s"]
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--skip", action="append", default=[], choices=["latency", "ddp"])
    args = parser.parse_args()
    started = time.perf_counter()
    body: dict[str, Any] = {"events": args.events, "epochs": args.epochs}
    with tempfile.TemporaryDirectory(prefix="flywheel-team-bench-") as tmp:
        if "latency" not in args.skip:
            body["latency"] = {
                db: latency(db, args.events, Path(tmp)) for db in ("sqlite", "postgresql")
            }
        if "ddp" not in args.skip:
            body["ddp"] = ddp(args.epochs, Path(tmp))
    path = write_result("team", body, started)
    print("| figure | value |\n|---|---|")
    for db, figures in body.get("latency", {}).items():
        raw = figures["raw"]
        median, worst = statistics.median(raw), max(raw)
        print(f"| event -> run created, {db} (median / max) | {median:.2f} s / {worst:.2f} s |")
        print(f"| server healthy after start, {db} | {figures['server_healthy_s']} s |")
    for name, figures in body.get("ddp", {}).items():
        print(f"| ddp {name} | {figures} |")
    print(f"written to {path}")


if __name__ == "__main__":
    main()
