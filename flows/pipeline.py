"""The retrain pipeline as a Prefect flow.

lock the project -> prepare -> snapshot data -> one task per DVC stage (validate, then the
validated data recorded in data.dvc) -> gate and deploy -> summary artifacts.
Stage tasks retry only on transient failures (a busy DVC lock); a failing stage is
deterministic, so retrying it would only repeat the error. Each stage runs in this process
through DVC's API (see flywheel.pipeline.dvc.reproduce): torch and Lightning load once per run.

A run started by the ``flywheel.data.changed`` trigger carries the data hash of the event;
when that data and the params are already in production it exits 'nothing to do' before
touching DVC, so a duplicate or late event costs a second, not a pipeline.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from flows import artifacts
from flywheel.core.workspace import Workspace, open_workspace
from flywheel.pipeline.names import FLOW_NAME, dataset_name, short_hash
from flywheel.pipeline.production import production_match

# The library's steps are imported inside each task: they pull in DVC (and the stages,
# torch), and the serve process imports this module only to register the deployment.
if TYPE_CHECKING:
    from flywheel.pipeline.record import DataVersion, RunRecord


def _transient(_task: Any, _run: Any, state: Any) -> bool:
    from flywheel.pipeline.steps import TRANSIENT_ERRORS

    try:
        err = state.result(raise_on_failure=False)
    except Exception:
        return False
    return isinstance(err, TRANSIENT_ERRORS)


@task(name="check-production", cache_policy=NO_CACHE)
def check_production(ws: Workspace, data_hash: str) -> str | None:
    card = production_match(ws, data_hash)
    logger = get_run_logger()
    if card is None:
        logger.info("data %s is not in production yet: running the pipeline", short_hash(data_hash))
        return None
    logger.info("data %s and params are production's (%s)", short_hash(data_hash), card.version)
    return card.version


@task(name="prepare", cache_policy=NO_CACHE)
def prepare(ws: Workspace) -> list[str]:
    """Repair what an interrupted run left (see flywheel.pipeline.steps.prepare)."""
    from flywheel.pipeline import steps

    done = steps.prepare(ws)
    get_run_logger().info("recovered: %s", "; ".join(done) if done else "nothing to recover")
    return done


@task(
    name="snapshot-data",
    cache_policy=NO_CACHE,
    retries=2,
    retry_delay_seconds=3,
    retry_condition_fn=_transient,
)
def snapshot_data(ws: Workspace, wanted: str | None = None) -> DataVersion:
    from flywheel.pipeline import steps

    version = steps.snapshot(ws, wanted)
    get_run_logger().info("data %s: the version this run validates and trains on", version.hash)
    return version


@task(name="push", cache_policy=NO_CACHE)
def push_run(ws: Workspace) -> int:
    """Data, stage outputs and run cache to the team remote, before anything is deployed."""
    from flywheel.pipeline import steps

    pushed = steps.push(ws)
    get_run_logger().info("pushed %d object(s) to %s", pushed, ws.params.remote.url)
    return pushed


@task(name="record-data", cache_policy=NO_CACHE)
def record_data(ws: Workspace, data: DataVersion) -> DataVersion:
    from flywheel.pipeline import steps

    version = steps.record_validated(ws, data)
    get_run_logger().info("data %s validated: recorded in %s", data.short, version.dvc_file)
    return version


@task(
    name="plan",
    cache_policy=NO_CACHE,
    retries=2,
    retry_delay_seconds=3,
    retry_condition_fn=_transient,
)
def plan(ws: Workspace) -> set[str]:
    from flywheel.pipeline import dvc

    changed = dvc.changed_stages(ws.root)
    get_run_logger().info("stages with changes: %s", sorted(changed) or "none")
    return changed


@task(
    name="stage",
    task_run_name="{stage}",
    cache_policy=NO_CACHE,
    retries=2,
    retry_delay_seconds=3,
    retry_condition_fn=_transient,
)
def stage_task(ws: Workspace, stage: str, data: DataVersion) -> dict[str, Any]:
    from flywheel.pipeline import steps

    logger = get_run_logger()
    with artifacts.forwarded_logs(logger):
        result = steps.reproduce(ws, stage, data)
    logger.info(result.output)
    return {"ran": result.ran, "seconds": result.seconds, "restored": result.restored}


@task(
    name="gate-and-deploy",
    cache_policy=NO_CACHE,
    retries=2,
    retry_delay_seconds=3,
    retry_condition_fn=_transient,
)
def gate_and_deploy(ws: Workspace, data: DataVersion) -> dict[str, Any]:
    """The deploy's outcome; a refusal by the gate is an outcome, not a failure."""
    from flywheel.pipeline.summary import refusal
    from flywheel.release.deploy import DeployRefused, deploy

    run = {
        "flow_run_id": str(flow_run.get_id() or ""),
        "flow_run_name": str(flow_run.get_name() or ""),
    }
    try:
        outcome = deploy(ws, data.hash, run).as_dict()
    except DeployRefused as refused:
        outcome = refusal(refused)
    get_run_logger().info("%s: %s", outcome["status"], outcome["reason"])
    return outcome


def _run_stages(
    ws: Workspace, changed: set[str], record: RunRecord, data: DataVersion
) -> DataVersion:
    """Fill ``record.stages`` as they finish, so a failure still reports the ones before
    it; returns the data version once validated and recorded."""
    from flywheel.stages import NAMES

    stages = record.stages
    for stage in NAMES:
        if not changed:
            # An empty plan means every stage is cached; otherwise DVC decides stage by stage.
            stages[stage] = {"ran": False, "seconds": 0.0}
        elif stage == "validate":
            try:
                stages[stage] = stage_task(ws, stage, data)
            finally:
                artifacts.link_data_docs(ws)  # the docs explain a failure best
                artifacts.publish_validation(ws)
        elif stage == "train":
            with artifacts.training_progress() as progress:
                stages[stage] = stage_task(ws, stage, data)
            if not stages[stage]["ran"]:
                artifacts.training_cached(progress)
        else:
            stages[stage] = stage_task(ws, stage, data)
        if stage == "validate":
            data = record.data = record_data(ws, data)
    return data


def _publish(ws: Workspace, record: RunRecord, with_variants: bool) -> None:
    from flywheel.feedback.provenance import feedback_counts
    from flywheel.pipeline.summary import summary_markdown, variant_rows

    rows = variant_rows(ws, record.deploy) if with_variants else []
    artifacts.publish(summary_markdown(record, rows, feedback_counts(ws.layout)), rows)


def _nothing_to_do(ws: Workspace, data_hash: str, version: str) -> dict[str, Any]:
    from flywheel.pipeline.record import DataVersion, RunRecord
    from flywheel.pipeline.summary import record_json

    reason = f"data {short_hash(data_hash)} and params are already in production ({version})"
    record = RunRecord.unchanged(ws.name, DataVersion(data_hash, None), version, reason)
    _publish(ws, record, with_variants=False)
    return {"record": record_json(record)}


@flow(name=FLOW_NAME, log_prints=True)
def pipeline(
    params_file: str = "params.yaml",
    project: str | None = None,
    data_hash: str | None = None,
    dataset: str | None = None,
    trigger: str = "manual",
    dataset_limit: str | None = None,
) -> Any:
    """``data_hash`` and ``dataset`` come from a ``flywheel.data.changed`` event; ``trigger``
    says what started the run (manual, event, schedule). Ends deployed, nothing to do,
    refused by the gate (a Completed state named Refused, the checks in the summary) or
    failed with a typed reason. ``dataset_limit`` (set by the work-pool deployment, see
    flows/pool.py) names the global concurrency limit the run holds, so no two workers
    work on one dataset at once."""
    from pathlib import Path

    ws = open_workspace(params_file, Path(project) if project else None)
    if dataset_limit is None:
        return _run(ws, data_hash, dataset, trigger)
    from prefect.concurrency.sync import concurrency

    get_run_logger().info("waiting for %s (one run of a dataset at a time)", dataset_limit)
    # strict: a missing limit is an error, never a silently unlimited run. The lease
    # (renewed by a thread of this process) lapses when the machine running it dies.
    with concurrency(
        dataset_limit,
        occupy=1,
        timeout_seconds=ws.params.schedule.wait_for_run_s,
        lease_duration=60,
        strict=True,
    ):
        return _run(ws, data_hash, dataset, trigger)


def _run(ws: Workspace, data_hash: str | None, dataset: str | None, trigger: str) -> Any:
    from flywheel.pipeline.lock import project_lock
    from flywheel.pipeline.sync import pull_data_version

    dataset = dataset or dataset_name(ws)
    if data_hash and pull_data_version(ws, data_hash):
        get_run_logger().info("data %s pulled from the remote", short_hash(data_hash))
    if data_hash:
        artifacts.label_run(data_hash, dataset, trigger)
        live = check_production(ws, data_hash)
        if live is not None:
            return _nothing_to_do(ws, data_hash, live)
    # What the UI will call this run (label_run names triggered runs after their data).
    name = short_hash(data_hash) if data_hash else str(flow_run.get_name() or "")
    with project_lock(
        ws.project,
        what=f"flow run {name} ({FLOW_NAME})",
        trigger=trigger,
        wait_s=ws.params.schedule.wait_for_run_s,
        on_wait=get_run_logger().warning,
    ):
        return _locked_run(ws, data_hash, dataset, trigger)


def _locked_run(ws: Workspace, data_hash: str | None, dataset: str, trigger: str) -> Any:
    from prefect.states import Completed

    from flywheel.pipeline.record import RunRecord
    from flywheel.pipeline.summary import failure_reason, record_json

    prepare(ws)
    data = snapshot_data(ws, data_hash)
    if data.hash != data_hash:
        artifacts.label_run(data.hash, dataset, trigger)
    record = RunRecord(workspace=ws.name, data=data)
    try:
        data = _run_stages(ws, plan(ws), record, data)
        if ws.params.remote.enabled:
            push_run(ws)
        record.deploy = gate_and_deploy(ws, data)
    except Exception as err:
        record.status = f"failed: {failure_reason(err)}"
        try:
            _publish(ws, record, with_variants=False)
        except Exception as publish_err:  # keep the run's own error as the reason it failed
            get_run_logger().warning("could not publish the failure summary: %s", publish_err)
        raise
    record.status = "nothing to do" if record.nothing_to_do else record.deploy["status"]
    _publish(ws, record, with_variants=True)
    result = {"record": record_json(record)}
    if record.status == "refused":
        # A normal outcome, not a crash: the UI shows a completed run named Refused.
        return Completed(name="Refused", message=record.deploy["reason"], data=result)
    return result
