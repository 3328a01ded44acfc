"""The ``monitor`` flow and its deployment: production against the model's reference.

Each run compares the prediction log's latest window with the production model's
reference profile, publishes the drift report (a table and a markdown artifact), and emits
``flywheel.drift.detected`` when the drift share reaches ``monitor.threshold``; the retrain
deployment listens for it when ``monitor.retrain_on_drift`` is on. With
``feedback.auto_accept`` it first accepts what the inbox holds (the suite still decides).
The deployment runs on ``monitor.cron``; ``flows.retrain`` serves it beside retrain, or in
team mode ``flows.pool`` puts both on the work pool.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.schedules import Cron
from prefect.types.entrypoint import EntrypointType

from flywheel.core.workspace import Workspace, open_workspace
from flywheel.pipeline.names import dataset_name, deployment_name

if TYPE_CHECKING:
    from prefect.deployments.runner import RunnerDeployment

FLOW = "flywheel-monitor"


@task(name="review-feedback", cache_policy=NO_CACHE)
def review_feedback(ws: Workspace) -> dict[str, Any]:
    from flywheel.feedback.inbox import open_inbox
    from flywheel.feedback.review import accept

    inbox = open_inbox(ws)
    pending = [r for r in inbox.records() if r.status == "pending"]
    return accept(ws, pending).as_dict() if pending else {"accepted": [], "failed": {}}


@task(name="compare-with-reference", cache_policy=NO_CACHE)
def compare_with_reference(ws: Workspace) -> dict[str, Any]:
    from flywheel.monitor.report import run_monitor

    return run_monitor(ws)


@task(name="emit-drift", cache_policy=NO_CACHE)
def emit_drift(ws: Workspace, report: dict[str, Any]) -> str:
    from prefect.settings import PREFECT_API_URL

    from flywheel.monitor.summary import event_payload
    from flywheel.triggers.events import emit_drift_detected

    # The server running this flow, which is where its triggers listen.
    api = PREFECT_API_URL.value() or None
    return emit_drift_detected(ws, str(report["model_version"]), event_payload(report), api_url=api)


@flow(name=FLOW, log_prints=True)
def monitor(params_file: str | None = None, project: str | None = None) -> dict[str, Any]:
    from flywheel.monitor.summary import markdown, table_rows

    ws = open_workspace(params_file, Path(project) if project else None)
    if ws.params.feedback.auto_accept:
        review_feedback(ws)
    report = compare_with_reference(ws)
    create_markdown_artifact(markdown(report), key="flywheel-drift-report")
    rows = table_rows(report)
    if rows:
        create_table_artifact(rows, key="flywheel-drift-table")
    if report["drifted"]:
        report["event_id"] = emit_drift(ws, report)
    return report


def deployment_options(ws: Workspace) -> dict[str, Any]:
    """Name, schedule and tags of the monitor deployment, served or on a work pool."""
    cron = ws.params.monitor.cron.strip()
    return {
        "name": f"monitor-{deployment_name(ws)}",
        "description": f"Drift and live accuracy of production on {dataset_name(ws)}",
        "schedules": [Cron(cron, timezone=ws.params.schedule.timezone)] if cron else [],
        "tags": ["flywheel", "monitor"],
    }


def build(ws: Workspace) -> RunnerDeployment:
    deployment = monitor.to_deployment(
        **deployment_options(ws),
        parameters={"params_file": str(ws.params_file), "project": str(ws.project)},
        entrypoint_type=EntrypointType.MODULE_PATH,
    )
    return cast("RunnerDeployment", deployment)
