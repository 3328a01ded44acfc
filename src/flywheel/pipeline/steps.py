"""The steps of a run that need more than one library call, with no Prefect in them.

The flow (``flows/pipeline.py``) adds retries, tasks and artifacts around these; tests and
benchmarks call the same steps directly.
"""

from __future__ import annotations

from pathlib import Path

from flywheel.core.workspace import Workspace
from flywheel.pipeline import dvc
from flywheel.pipeline.record import DataVersion, RunRecord
from flywheel.release.deploy import load_evaluation
from flywheel.release.registry import Registry
from flywheel.release.registry.card import sha256_file

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (dvc.DvcBusy, TimeoutError)


def _version(ws: Workspace, digest: str, dvc_file: Path | None) -> DataVersion:
    return DataVersion(digest, str(dvc_file.relative_to(ws.project)) if dvc_file else None)


def snapshot(ws: Workspace) -> DataVersion:
    """Version the workspace's data with DVC (when it lives in the project)."""
    digest, dvc_file = dvc.snapshot_data(ws.project, ws.layout.data)
    return _version(ws, digest, dvc_file)


def up_to_date(ws: Workspace) -> RunRecord | None:
    """What a run would report without running one, when it would change nothing: the data
    is the version DVC records, every stage is cached and the evaluated winner is already
    registered. None when anything is left to do (or to check)."""
    recorded = dvc.recorded_version(ws.project, ws.layout.data)
    if recorded is None or not ws.layout.evaluation_report.is_file():
        return None
    if dvc.changed_stages(ws.root):
        return None
    winner = str(load_evaluation(ws)["winner"])
    known = Registry(ws.layout.registry).registered(sha256_file(ws.layout.variant_file(winner)))
    if known is None:
        return None
    card, why = known
    reason = f"candidate {winner} is {card.version}, {why}"
    return RunRecord.unchanged(ws.name, _version(ws, *recorded), card.version, reason)


def reproduce(ws: Workspace, stage: str) -> dvc.StageRun:
    """One stage reproduced through DVC, its body (what ``flywheel stage <name>`` runs) in
    this process with the workspace's params; a failing ``validate`` raises the typed
    :class:`~flywheel.core.errors.DataValidationError`."""
    from flywheel import stages

    return dvc.reproduce(ws.root, stage, lambda: stages.run(stage, ws.params, ws.layout))
