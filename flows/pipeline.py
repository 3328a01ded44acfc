"""The retrain pipeline as a Prefect flow.

snapshot data -> one task per DVC stage -> gate and deploy -> summary artifacts.
Stage tasks retry only on transient failures (a busy DVC lock); a failing stage is
deterministic, so retrying it would only repeat the error.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from flywheel import orchestration as steps
from flywheel.workspace import Workspace


def _transient(_task: Any, _run: Any, state: Any) -> bool:
    try:
        err = state.result(raise_on_failure=False)
    except Exception:
        return False
    return isinstance(err, steps.TRANSIENT_ERRORS)


@task(
    name="snapshot-data",
    cache_policy=NO_CACHE,
    retries=2,
    retry_delay_seconds=3,
    retry_condition_fn=_transient,
)
def snapshot_data(ws: Workspace) -> steps.DataVersion:
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
    logger = get_run_logger()
    result = steps.run_stage(ws, stage)
    for line in result.output.splitlines():
        if line.strip():
            logger.info(line)
    return {"ran": result.ran, "seconds": result.seconds}


@task(
    name="gate-and-deploy",
    cache_policy=NO_CACHE,
    retries=2,
    retry_delay_seconds=3,
    retry_condition_fn=_transient,
)
def gate_and_deploy(ws: Workspace, data: steps.DataVersion) -> dict[str, Any]:
    run = {
        "flow_run_id": str(flow_run.get_id() or ""),
        "flow_run_name": str(flow_run.get_name() or ""),
    }
    outcome = steps.gate_and_deploy(ws, data, run)
    get_run_logger().info("%s: %s", outcome.status, outcome.reason)
    return outcome.as_dict()


@flow(name="flywheel-pipeline", log_prints=True)
def pipeline(params_file: str = "params.yaml", project: str | None = None) -> dict[str, Any]:
    ws = steps.prepare(params_file, project)
    data = snapshot_data(ws)
    record = steps.RunRecord(workspace=ws.name, data=data)
    changed = plan(ws)
    for stage in steps.STAGES:
        # An empty plan means every stage is cached; otherwise DVC decides stage by stage.
        record.stages[stage] = run_stage(ws, stage) if changed else {"ran": False, "seconds": 0.0}
    record.deploy = gate_and_deploy(ws, data)
    record.status = "nothing to do" if record.nothing_to_do else record.deploy["status"]
    rows = steps.variant_rows(ws)
    create_table_artifact(key="variants", table=rows, description="Every variant on the test split")
    create_markdown_artifact(
        key="run-summary",
        markdown=steps.summary_markdown(record, rows),
        description="Flywheel run summary",
    )
    return {"record": steps.record_json(record)}
