"""Helpers for the `flywheel up` integration tests: a real Prefect server, a real DVC
project with tiny params, the CLI as a subprocess, data edits, and polling the API."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

from flywheel.datasets.png import encode_png
from flywheel.release.registry import Registry
from flywheel.supervise.api import PrefectApi, run_summary
from flywheel.supervise.prefect_server import api_url, server_command, server_env, wait_healthy
from flywheel.supervise.state import ServicePaths, read_state
from flywheel.supervise.supervisor import terminate_group

TERMINAL = frozenset({"COMPLETED", "FAILED", "CRASHED", "CANCELLED"})

# On top of FAST_PARAMS: the service and fault tests check orchestration, not model
# quality, so training is cut to a few batches, only the fp32 variant is built, and the
# gate only refuses a broken model (a noisy latency ratio must not reject a retrain).
TINY_RUN_PARAMS: dict[str, dict[str, Any]] = {
    "train": {"max_epochs": 2, "patience": 1, "limit_batches": 8},
    "compress": {"variants": ["fp32"], "finetune_epochs": 0, "calibration_samples": 32},
    "evaluate": {"latency_runs": 5, "warmup_runs": 1, "throughput_runs": 1},
    "gate": {
        "min_accuracy": 0.3,
        "tolerance": 1.0,
        "max_latency_ratio": 1000.0,
        "max_size_ratio": 1000.0,
    },
}
SERVICE_PARAMS: dict[str, dict[str, Any]] = {
    **TINY_RUN_PARAMS,
    "schedule": {"cron": "0 3 * * *", "timezone": "UTC", "debounce_s": 1.0},
}


def make_project(root: Path, overrides: dict[str, dict[str, Any]]) -> Path:
    """The integration tests' project, with ``overrides`` merged key by key into FAST_PARAMS."""
    from tests.integration.conftest import FAST_PARAMS, build_project

    merged: dict[str, dict[str, Any]] = {k: dict(v) for k, v in FAST_PARAMS.items()}
    for section, values in overrides.items():
        merged.setdefault(section, {}).update(values)
    return build_project(root, merged)


def start_server(home: Path, port: int) -> tuple[subprocess.Popen[bytes], str]:
    """`prefect server start` on loopback, SQLite under ``home``; killed with its group."""
    log = home / "server.log"
    home.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            server_command("127.0.0.1", port),
            env=server_env(home, "127.0.0.1", port),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    api = api_url("127.0.0.1", port)
    try:
        wait_healthy(api, 180, proc, log)
    except BaseException:
        stop_group(proc)
        raise
    return proc, api


def stop_group(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    terminate_group(proc.pid, timeout, proc)


def cli(
    project: Path, env: dict[str, str], *args: str, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flywheel.cli", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@functools.cache
def _digits() -> tuple[np.ndarray, np.ndarray]:
    from flywheel.datasets.digits import digits_images

    return digits_images()


def digit_image(label: int, variant: int) -> bytes:
    """A real digit of ``label``, shifted so each ``variant`` is new content.

    The dataset is read once: tests write these in bursts that must stay inside the
    watcher's 1 s debounce, and re-reading it per image on a loaded machine stretched the
    gaps past it (one burst became several runs)."""
    pixels, labels = _digits()
    images = pixels[labels == label]
    image = images[variant % len(images)]
    return encode_png(np.roll(image, 1 + variant // len(images), axis=variant % 2))


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


@dataclass
class Service:
    project: Path
    env: dict[str, str]
    api: PrefectApi
    deployment: str = "flywheel-pipeline/retrain"

    @property
    def data(self) -> Path:
        return self.project / "data"

    def deployment_info(self) -> dict[str, Any]:
        info = self.api.deployment(self.deployment)
        assert info is not None, f"{self.deployment} is not registered"
        return info

    def runs(self) -> list[dict[str, Any]]:
        """Every run of the deployment, oldest first."""
        raw = self.api.flow_runs(str(self.deployment_info()["id"]), limit=200)
        return [run_summary(r) for r in reversed(raw)]

    def settled_runs(self, count_at_least: int, timeout: float, quiet_s: float = 3.0) -> list:
        """Wait until at least ``count_at_least`` runs exist, all finished, and nothing new
        has appeared for ``quiet_s`` seconds. A queued follow-up exists from its event on;
        the quiet period catches an event the watcher would send after a run (debounce 1 s)."""
        deadline = time.monotonic() + timeout
        stable_since, last = time.monotonic(), None
        while True:
            runs = self.runs()
            key = [(r["id"], r["state_type"]) for r in runs]
            if key != last:
                stable_since, last = time.monotonic(), key
            done = len(runs) >= count_at_least and all(r["state_type"] in TERMINAL for r in runs)
            if done and time.monotonic() - stable_since >= quiet_s:
                return runs
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"runs did not settle within {timeout:.0f}s: "
                    + ", ".join(f"{r['name']}={r['state_name']}" for r in runs)
                )
            time.sleep(1.0)


def _registry(svc: Service) -> Registry:
    return Registry(svc.project / "registry")


def _up_state(svc: Service) -> dict:
    state = read_state(ServicePaths(svc.project))
    assert state is not None, "flywheel up is not running"
    return state


def _overlaps(intervals: list[tuple[datetime, datetime]]) -> list[tuple]:
    return [(a, b) for a, b in combinations(sorted(intervals), 2) if b[0] < a[1]]


def assert_dvc_status_clean(project: Path) -> None:
    """DVC's own CLI, in its own process, sees nothing to do: what `dvc repro` leaves."""
    status = subprocess.run(
        [sys.executable, "-m", "dvc", "status", "--json"],
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(status.stdout) == {}
