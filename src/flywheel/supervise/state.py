"""Where ``flywheel up`` keeps its state: one folder per project, outside version control.

``up.json`` says which supervisor runs, at which API address, and its children; ``down``
and ``status`` read it. It is written atomically so a reader never sees half of it.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flywheel.core.atomic import atomic_write_text


@dataclass(frozen=True)
class ServicePaths:
    project: Path

    @property
    def root(self) -> Path:
        return self.project / ".flywheel" / "service"

    @property
    def state_file(self) -> Path:
        return self.root / "up.json"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def log_file(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def watcher_state(self, workspace: str) -> Path:
        return self.root / f"watcher-{workspace}.json"

    @property
    def prefect_home(self) -> Path:
        # The same home `flywheel run` uses, so the UI shows both kinds of runs.
        return self.project / ".prefect"


def pid_alive(pid: int) -> bool:
    if pid <= 0:  # kill(0) would signal our own process group
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); it is gone for every purpose here.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return True


def read_state(paths: ServicePaths) -> dict[str, Any] | None:
    try:
        return dict(json.loads(paths.state_file.read_text()))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def write_state(paths: ServicePaths, state: dict[str, Any]) -> None:
    atomic_write_text(paths.state_file, json.dumps(state, indent=2, default=str) + "\n")


def clear_state(paths: ServicePaths, pid: int) -> None:
    """Remove the state file, but only if it still belongs to ``pid`` (a newer ``up`` may
    have replaced it)."""
    state = read_state(paths)
    if state is not None and state.get("pid") == pid:
        with contextlib.suppress(FileNotFoundError):
            paths.state_file.unlink()


def running_state(paths: ServicePaths) -> dict[str, Any] | None:
    """The state of a live ``up`` for this project, or None."""
    state = read_state(paths)
    if state is None or not pid_alive(int(state.get("pid", 0))):
        return None
    return state
