"""Helpers for the kill -9 tests: the CLI with a fault point armed, what a killed or a
finished run left, the settled state a recovering run must reach, and a model server
process to kill."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import httpx
from tests.integration.service_helpers import assert_dvc_status_clean, cli, wait_for

from flywheel.core.faults import ENV
from flywheel.datasets.hashing import data_hash
from flywheel.pipeline.dvc import recorded_hash
from flywheel.release.registry import Registry

_LEFTOVER = re.compile(r"(\.tmp$)|(^\.v\d{4})")


def _run(project: Path, env: dict[str, str], *args: str, fault: str | None = None):
    return cli(project, {**env, ENV: fault} if fault else env, *args, timeout=600)


def _killed(proc: subprocess.CompletedProcess[str], point: str) -> None:
    assert proc.returncode == -9, (
        f"{point}: not killed (rc {proc.returncode}): {proc.stderr[-2000:]}"
    )


def _record(proc: subprocess.CompletedProcess[str]) -> dict:
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return json.loads(proc.stdout)


def leftovers(project: Path) -> list[Path]:
    """Temp files and staging folders anywhere a run, deploy or watcher writes."""
    found = [p for p in project.iterdir() if p.name.endswith(".tmp")]
    for folder in ("registry", "artifacts", ".flywheel", ".dvc/cache", "feedback"):
        root = project / folder
        if root.is_dir():
            found += [p for p in root.rglob("*") if _LEFTOVER.search(p.name)]
    return found


def production_gated(registry: Registry) -> str | None:
    """Production (if any) is whole and went live through the gate."""
    version = registry.production_version()
    if version is None:
        return None
    registry.verify(version)
    promotions = [
        e
        for e in registry.journal.events()
        if e["event"] == "promoted" and e["version"] == version and not e.get("restored")
    ]
    assert promotions and all(e.get("gate_passed") for e in promotions), promotions
    return version


def assert_settled(project: Path) -> str:
    """The property after a recovering run: production gated and verified, every version
    accounted for, nothing left over, DVC's view clean and naming production's data."""
    registry = Registry(project / "registry")
    version = production_gated(registry)
    assert version is not None
    assert registry.verified(version)
    live = registry.production_version()
    stranded = [v for v in registry.versions() if registry.status(v, live) == "stranded"]
    assert stranded == []
    assert leftovers(project) == []
    card = registry.card(version)
    assert recorded_hash(project / "data.dvc") == card.data_hash == data_hash(project / "data")
    assert_dvc_status_clean(project)
    return version


def _serve(project: Path, env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "flywheel.cli", "serve", "--port", str(port)],
        cwd=project,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for(lambda: _get(port, "/readyz") == 200 or proc.poll() is not None, 120, "serve")
    assert proc.poll() is None, "the model server exited at start"
    return proc


def _get(port: int, path: str) -> int | None:
    try:
        return httpx.get(f"http://127.0.0.1:{port}{path}", timeout=5).status_code
    except httpx.HTTPError:
        return None
