"""The retrain pipeline as a Prefect flow.

snapshot data -> one task per DVC stage -> gate and deploy -> summary artifacts.
Stage tasks retry only on transient failures (a busy DVC lock); a failing stage is
deterministic, so retrying it would only repeat the error. Each stage runs in this process
through DVC's API (see flywheel.dvc_ops.reproduce): torch and Lightning load once per run.

A run started by the ``flywheel.data.changed`` trigger carries the data hash of the event;
when that data and the params are already in production it exits 'nothing to do' before
touching DVC, so a duplicate or late event costs a second, not a pipeline.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from uuid import UUID

from prefect import flow, get_client, get_run_logger, task
from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from flywheel import training_progress
from flywheel.service.events import dataset_name, dataset_tag
from flywheel.service.names import FLOW_NAME
from flywheel.service.runs import production_match, short_hash
from flywheel.workspace import Workspace

# The steps are imported inside each function: they pull in torch (seconds, hundreds of MB)
# and the serve process imports this module only to register the deployment.
if TYPE_CHECKING:
    from flywheel.orchestration import DataVersion, RunRecord

STAGE_LOGGERS = ("flywheel", "dvc", "lightning.pytorch")


def _transient(_task: Any, _run: Any, state: Any) -> bool:
    from flywheel import orchestration as steps

    try:
        err = state.result(raise_on_failure=False)
    except Exception:
        return False
    return isinstance(err, steps.TRANSIENT_ERRORS)


@task(name="check-production", cache_policy=NO_CACHE)
def check_production(ws: Workspace, data_hash: str) -> dict[str, Any] | None:
    card = production_match(ws, data_hash)
    logger = get_run_logger()
    if card is None:
        logger.info("data %s is not in production yet: running the pipeline", short_hash(data_hash))
        return None
    logger.info("data %s and params are production's (%s)", short_hash(data_hash), card.version)
    return {"version": card.version}


@task(
    name="snapshot-data",
    cache_policy=NO_CACHE,
    retries=2,
    retry_delay_seconds=3,
    retry_condition_fn=_transient,
)
def snapshot_data(ws: Workspace) -> DataVersion:
    from flywheel import orchestration as steps

    version = steps.snapshot(ws)
    get_run_logger().info("data %s (%s)", version.hash, version.dvc_file or "not DVC-tracked")
    return version


@task(
    name="plan",
    cache_policy=NO_CACHE,
    retries=2,
    retry_delay_seconds=3,
    retry_condition_fn=_transient,
)
def plan(ws: Workspace) -> set[str]:
    from flywheel import orchestration as steps

    changed = steps.changed_stages(ws)
    get_run_logger().info("stages with changes: %s", sorted(changed) or "none")
    return changed


@task(
    name="stage",
    task_run_name="{stage}",
    cache_policy=NO_CACHE,
    retries=2,
    retry_delay_seconds=5,
    retry_condition_fn=_transient,
)
def run_stage(ws: Workspace, stage: str) -> dict[str, Any]:
    from flywheel import orchestration as steps

    logger = get_run_logger()
    with _forwarded_logs(logger):
        result = steps.run_stage(ws, stage)
    logger.info(result.output)
    return {"ran": result.ran, "seconds": result.seconds}


@contextlib.contextmanager
def _forwarded_logs(run_logger: Any) -> Iterator[None]:
    """The stage's own log lines (flywheel, DVC, Lightning) also go to the task's run log, so
    the Prefect UI shows what the stage did; they run in this process, under these loggers."""

    class Forward(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            run_logger.log(record.levelno, "%s: %s", record.name, record.getMessage())

    handler = Forward(logging.INFO)
    sources = [logging.getLogger(name) for name in STAGE_LOGGERS]
    ours = logging.getLogger("flywheel")
    level = ours.level
    if ours.getEffectiveLevel() > logging.INFO:
        ours.setLevel(logging.INFO)  # a served run has no logging set up: INFO would be dropped
    for source in sources:
        source.addHandler(handler)
    try:
        yield
    finally:
        for source in sources:
            source.removeHandler(handler)
        ours.setLevel(level)


@task(
    name="gate-and-deploy",
    cache_policy=NO_CACHE,
    retries=2,
    retry_delay_seconds=3,
    retry_condition_fn=_transient,
)
def gate_and_deploy(ws: Workspace, data: DataVersion) -> dict[str, Any]:
    from flywheel import orchestration as steps

    run = {
        "flow_run_id": str(flow_run.get_id() or ""),
        "flow_run_name": str(flow_run.get_name() or ""),
    }
    outcome = steps.gate_and_deploy(ws, data, run)
    get_run_logger().info("%s: %s", outcome.status, outcome.reason)
    return outcome.as_dict()


def _label_run(data_hash: str, dataset: str, trigger: str) -> None:
    """Name the run after the data it processes and tag it, so the UI lists runs by data."""
    run_id = flow_run.get_id()
    if not run_id:
        return
    tags = sorted({*flow_run.get_tags(), dataset_tag(dataset), f"trigger:{trigger}"})
    try:
        with get_client(sync_client=True) as client:
            client.update_flow_run(UUID(str(run_id)), name=short_hash(data_hash), tags=tags)
    except Exception as err:  # a label is cosmetic; never fail a run over it
        get_run_logger().warning("could not name the run after its data: %s", err)


def _api_url() -> str:
    with get_client(sync_client=True) as client:
        return str(client.api_url)


def _link_data_docs(ws: Workspace) -> None:
    report = ws.layout.validation_dir / "report.json"
    if not report.is_file():
        return
    docs = json.loads(report.read_text()).get("data_docs_path")
    if not docs:
        return
    create_link_artifact(
        key="data-docs",
        link=Path(docs).resolve().as_uri(),
        link_text="Great Expectations Data Docs",
        description="The validation run of this data, with every expectation and its result",
    )


def _run_stages(ws: Workspace, changed: set[str], stages: dict[str, dict[str, Any]]) -> None:
    """Fill ``stages`` as they finish, so a failure still reports the ones before it."""
    from flywheel import orchestration as steps

    for stage in steps.STAGES:
        if not changed:
            # An empty plan means every stage is cached; otherwise DVC decides stage by stage.
            stages[stage] = {"ran": False, "seconds": 0.0}
        elif stage == "validate":
            try:
                stages[stage] = run_stage(ws, stage)
            finally:
                _link_data_docs(ws)  # the docs explain a failure best
        elif stage == "train":
            progress = cast(
                UUID,
                create_progress_artifact(
                    progress=0.0,
                    key=training_progress.ARTIFACT_KEY,
                    description="waiting for the first epoch",
                ),
            )
            with training_progress.reporting(progress, _api_url()):
                stages[stage] = run_stage(ws, stage)
            if not stages[stage]["ran"]:
                update_progress_artifact(progress, 100.0, description="cached: nothing to train")
        else:
            stages[stage] = run_stage(ws, stage)


def _publish(record: RunRecord, rows: list[dict[str, Any]]) -> None:
    from flywheel import orchestration as steps

    if rows:
        create_table_artifact(
            key="variants", table=rows, description="Every variant on the test split"
        )
    create_markdown_artifact(
        key="run-summary",
        markdown=steps.summary_markdown(record, rows),
        description="Flywheel run summary",
    )


def _nothing_to_do(ws: Workspace, data_hash: str, version: str) -> dict[str, Any]:
    from flywheel import orchestration as steps

    reason = f"data {short_hash(data_hash)} and params are already in production ({version})"
    record = steps.RunRecord.unchanged(ws.name, steps.DataVersion(data_hash, None), version, reason)
    _publish(record, [])
    return {"record": steps.record_json(record)}


@flow(name=FLOW_NAME, log_prints=True)
def pipeline(
    params_file: str = "params.yaml",
    project: str | None = None,
    data_hash: str | None = None,
    dataset: str | None = None,
    trigger: str = "manual",
) -> dict[str, Any]:
    """``data_hash`` and ``dataset`` come from a ``flywheel.data.changed`` event; ``trigger``
    says what started the run (manual, event, schedule)."""
    from flywheel import orchestration as steps

    ws = steps.prepare(params_file, project)
    dataset = dataset or dataset_name(ws)
    if data_hash:
        _label_run(data_hash, dataset, trigger)
        live = check_production(ws, data_hash)
        if live is not None:
            return _nothing_to_do(ws, data_hash, live["version"])
    data = snapshot_data(ws)
    if data.hash != data_hash:
        _label_run(data.hash, dataset, trigger)
    record = steps.RunRecord(workspace=ws.name, data=data)
    try:
        _run_stages(ws, plan(ws), record.stages)
        record.deploy = gate_and_deploy(ws, data)
    except Exception as err:
        record.status = f"failed: {steps.failure_reason(err)}"
        try:
            _publish(record, [])
        except Exception as publish_err:  # keep the run's own error as the reason it failed
            get_run_logger().warning("could not publish the failure summary: %s", publish_err)
        raise
    record.status = "nothing to do" if record.nothing_to_do else record.deploy["status"]
    _publish(record, steps.variant_rows(ws))
    return {"record": steps.record_json(record)}
