"""Accepting feedback: the dataset's own suite decides, then the data grows by new files.

The candidates are written into a staging copy of the data folder (hard links to the
existing files, so nothing is copied and nothing existing can change), the family builds
its manifest of that copy and the stored Great Expectations suite runs over all of it:
the accepted records are checked together with the current data, so dataset-wide rules
(duplicates, class counts) see both. Records whose rows break an expectation stay in the
inbox with the expectations named; the others' files are moved into the data folder
(a rename each, on one file system: every file appears whole) and the data is recorded as
a new DVC version. The watcher sees the change and starts the normal run; the gate
decides on the new model as on any other. The project's run lock is held throughout, so
no run validates the data halfway through a merge.
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flywheel.core.errors import InputError
from flywheel.core.workspace import Workspace
from flywheel.feedback.inbox import Inbox, Record, open_inbox
from flywheel.feedback.materialise import folder_files, table_part


@dataclass
class Outcome:
    accepted: list[str] = field(default_factory=list)
    # record id -> the expectations (or caps) it failed
    failed: dict[str, list[str]] = field(default_factory=dict)
    data_hash: str | None = None
    dvc_file: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "failed": self.failed,
            "data_hash": self.data_hash,
            "dvc_file": self.dvc_file,
        }


def _capped(
    ws: Workspace, inbox: Inbox, records: list[Record]
) -> tuple[list[Record], dict[str, list[str]]]:
    """Records within feedback.max_per_sender / max_per_version (0: no cap)."""
    cfg = ws.params.feedback
    senders, versions = inbox.accepted_counts()
    keep, over = [], {}
    for record in records:
        sender, version = str(record.meta.get("sender")), str(record.meta.get("model_version"))
        if cfg.max_per_sender and senders[sender] >= cfg.max_per_sender:
            over[record.id] = ["feedback.max_per_sender"]
        elif cfg.max_per_version and versions[version] >= cfg.max_per_version:
            over[record.id] = ["feedback.max_per_version"]
        else:
            senders[sender] += 1
            versions[version] += 1
            keep.append(record)
    return keep, over


Candidates = dict[str, tuple[bytes, list[Record]]]


def _link_tree(source: Path, dest: Path) -> None:
    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:  # another file system, or links not supported: a copy
            shutil.copy2(src, dst)

    if source.is_dir():
        shutil.copytree(source, dest, copy_function=link)
    else:
        dest.mkdir(parents=True)


def _candidates(ws: Workspace, records: list[Record]) -> Candidates:
    """``{path under data: (bytes, records it holds)}``."""
    params = ws.params
    if params.data.kind == "table":
        name, data = table_part(params, ws.layout.data, records)
        return {name: (data, records)}
    files = folder_files(params, records)
    return {path: (data, [r]) for (path, data), r in zip(files.items(), records, strict=True)}


def _suite_failures(ws: Workspace, stage: Path) -> dict[str, list[str]]:
    """``{manifest path: failed expectation names}`` of the suite over ``stage``."""
    from flywheel.families import get_family
    from flywheel.stages.validate.run import RESULT_FORMAT, batch_definition, collect_results
    from flywheel.stages.validate.suite import load_suite, open_context

    manifest = get_family(ws.params.task).manifest(ws.params, stage)
    context = open_context(ws.layout)
    suite = load_suite(context, ws.params.validate_.suite)
    batch = batch_definition(context).get_batch(batch_parameters={"dataframe": manifest})
    result = batch.validate(suite, result_format=RESULT_FORMAT)
    return collect_results(suite, result)[1]


def _failures_of(
    path: str, data_records: list[Record], offenders: dict[str, list[str]]
) -> dict[str, list[str]]:
    if len(data_records) == 1 and path in offenders:
        return {data_records[0].id: offenders[path]}
    out = {}
    for row, record in enumerate(data_records, start=1):  # a table part: <file>:<row>
        if f"{path}:{row}" in offenders:
            out[record.id] = offenders[f"{path}:{row}"]
    return out


def _check(ws: Workspace, candidates: Candidates) -> dict[str, list[str]]:
    # A dot name with pid and token: a killed review's copy is swept like any temp file.
    stage = ws.layout.root / ".flywheel" / f".feedback-stage.{os.getpid()}.{uuid.uuid4().hex[:8]}"
    try:
        _link_tree(ws.layout.data, stage)
        for path, (data, _) in candidates.items():
            (stage / path).parent.mkdir(parents=True, exist_ok=True)
            (stage / path).write_bytes(data)
        offenders = _suite_failures(ws, stage)
        failed: dict[str, list[str]] = {}
        for path, (_, held) in candidates.items():
            failed |= _failures_of(path, held, offenders)
        return failed
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _merge(ws: Workspace, records: list[Record]) -> dict[str, str]:
    """Write the records' files into the data folder; ``{record id: path under data}``."""
    from flywheel.core.atomic import atomic_write_bytes

    where: dict[str, str] = {}
    for path, (data, held) in _candidates(ws, records).items():
        target = ws.layout.data / path
        if target.exists():  # never an edit of an existing file
            raise InputError(f"{target} exists already; feedback never replaces data")
        atomic_write_bytes(target, data)
        where |= {r.id: path for r in held}
    return where


def accept(ws: Workspace, records: list[Record]) -> Outcome:
    from flywheel.datasets.hashing import data_hash
    from flywheel.pipeline import dvc
    from flywheel.pipeline.lock import project_lock

    inbox = open_inbox(ws)
    outcome = Outcome()
    eligible, outcome.failed = _capped(ws, inbox, records)
    with project_lock(
        ws.project, what="feedback accept", trigger="cli", wait_s=ws.params.schedule.wait_for_run_s
    ):
        if eligible:
            outcome.failed |= _check(ws, _candidates(ws, eligible))
        passing = [r for r in eligible if r.id not in outcome.failed]
        where = _merge(ws, passing) if passing else {}
        if passing:
            version = data_hash(ws.layout.data)
            dvc_file = dvc.record_data(ws.project, ws.layout.data, version)
            outcome.data_hash, outcome.dvc_file = version, str(dvc_file) if dvc_file else None
    for record in passing:
        inbox.remove(record, "accepted", data_file=where[record.id], data_hash=outcome.data_hash)
        outcome.accepted.append(record.id)
    for record in records:
        if record.id in outcome.failed:
            inbox.mark_failed(record, outcome.failed[record.id])
    return outcome


def reject(ws: Workspace, records: list[Record], reason: str) -> list[str]:
    inbox = open_inbox(ws)
    for record in records:
        inbox.remove(record, "rejected", reason=reason)
    return [r.id for r in records]
