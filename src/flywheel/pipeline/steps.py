"""The steps of a run that need more than one library call, with no Prefect in them.

The flow (``flows/pipeline.py``) adds retries, tasks and artifacts around these; tests and
benchmarks call the same steps directly. A run, under the project's lock:

    prepare   repair what a crash left (DVC files, temp files, the registry's leftovers)
    snapshot  hash the data: the version this run validates, trains on and names (with a
              team remote, first pull that version if this machine lacks it, and the run cache)
    validate  (a DVC stage, pinned to that hash) then record it in ``data.dvc``
    the other stages, each pinned where it reads the data; deploy checks the hash again
    push      with a team remote: data, outputs and run cache, all of it, before the deploy
"""

from __future__ import annotations

import logging
from pathlib import Path

from flywheel.core.atomic import sweep_temp
from flywheel.core.faults import fault_point
from flywheel.core.workspace import Workspace
from flywheel.pipeline import dvc, remote
from flywheel.pipeline.dvcfiles import repair
from flywheel.pipeline.record import DataVersion, RunRecord
from flywheel.release.deploy import load_evaluation, ranking
from flywheel.release.registry import open_registry
from flywheel.release.registry.card import sha256_file

log = logging.getLogger(__name__)

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (dvc.DvcBusy, TimeoutError)


def _version(ws: Workspace, digest: str, dvc_file: Path | None) -> DataVersion:
    return DataVersion(digest, str(dvc_file.relative_to(ws.project)) if dvc_file else None)


def prepare(ws: Workspace) -> list[str]:
    """Leave the project as a finished run would have, whatever killed the last one:
    unreadable DVC files repaired, temp files of dead writers and the registry's
    half-written versions removed. Call holding the project lock; returns what it did."""
    layout = ws.layout
    done = repair(ws.root, ws.project, dvc.dvc_file_of(ws.project, layout.data))
    # Under the project lock no stage writes: every temp file in artifacts/ is a leftover.
    removed = sweep_temp(layout.artifacts, any_writer=True)
    # Elsewhere only what a dead writer left: the watcher and the server may be writing.
    removed += sweep_temp(ws.project, recursive=False) + sweep_temp(ws.project / ".flywheel")
    if layout.feedback_inbox is not None:
        removed += sweep_temp(layout.feedback_inbox)
    registry = open_registry(layout.registry, ws.params.remote)
    with registry.lock():
        done += registry.recover()
    removed += dvc.sweep_cache_temp(ws.project)
    done += [f"removed {p}" for p in removed]
    for line in done:
        log.warning("recovered: %s", line)
    return done


def snapshot(ws: Workspace, wanted: str | None = None) -> DataVersion:
    """The data version this run works on: its content hash, as DVC computes it. It is
    recorded in ``data.dvc`` only once it passed validation (:func:`record_validated`).
    With a team remote, a machine lacking the data pulls ``wanted`` (else the version
    ``data.dvc`` records) first, and the run-cache entries other machines pushed."""
    from flywheel.datasets.hashing import data_hash

    if ws.params.remote.enabled:
        dvc_file = dvc.dvc_file_of(ws.project, ws.layout.data)
        wanted = wanted or (
            dvc.recorded_hash(dvc_file) if dvc_file and dvc_file.is_file() else None
        )
        if wanted:
            remote.pull_data(ws, wanted)
        remote.pull_run_cache(ws)

    version = DataVersion(data_hash(ws.layout.data), None)
    fault_point("run.after_snapshot")
    return version


def record_validated(ws: Workspace, data: DataVersion) -> DataVersion:
    """Record the validated snapshot with DVC (``dvc add``); the folder must still be it."""
    dvc_file = dvc.record_data(ws.project, ws.layout.data, data.hash)
    return _version(ws, data.hash, dvc_file)


def up_to_date(ws: Workspace) -> RunRecord | None:
    """What a run would report without running one, when it would change nothing: the data
    is the version DVC records, every stage is cached and production is one of the
    evaluation's candidates (the deploy would say the same). None when anything is left
    to do (or to check)."""
    recorded = dvc.recorded_version(ws.project, ws.layout.data)
    if recorded is None or not ws.layout.evaluation_report.is_file():
        return None
    if dvc.changed_stages(ws.root):
        return None
    registry = open_registry(ws.layout.registry, ws.params.remote)
    production = registry.production()
    if production is None or not registry.verified(production.version):
        return None  # nothing live, or a kill cut its check short: the deploy finishes it
    ranked = ranking(load_evaluation(ws))
    live = [v for v in ranked if sha256_file(ws.layout.variant_file(v)) == production.sha256]
    if not live:
        return None
    reason = f"candidate {live[0]} is {production.version}, already in production"
    return RunRecord.unchanged(ws.name, _version(ws, *recorded), production.version, reason)


def reproduce(ws: Workspace, stage: str, data: DataVersion | None = None) -> dvc.StageRun:
    """One stage reproduced through DVC, its body (what ``flywheel stage <name>`` runs) in
    this process with the workspace's params, every input that is the data folder pinned
    to the run's snapshot ``data``; a failing ``validate`` raises the typed
    :class:`~flywheel.core.errors.DataValidationError`."""
    from flywheel import stages

    pins = {ws.layout.data: data.hash} if data is not None else None
    config = remote.dvc_config(ws.params.remote)
    body = lambda: stages.run(stage, ws.params, ws.layout)  # noqa: E731
    if config is None:
        return dvc.reproduce(ws.root, stage, body, pins)
    with remote.restore_errors(ws.params.remote, stage):
        return dvc.reproduce(ws.root, stage, body, pins, config)


def push(ws: Workspace) -> int:
    """With a team remote, everything this run made, checked on the remote (else 0)."""
    return remote.push_run(ws)
