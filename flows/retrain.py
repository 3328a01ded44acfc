"""The ``retrain`` deployment of the pipeline flow, and the process that serves it.

Runs come from three places: the ``flywheel.data.changed`` event (the watcher emits it),
the cron schedule in ``params.yaml`` (``schedule.cron``; none when empty), and the UI or
API. The deployment allows one run at a time; further runs wait for the slot in order.

    python -m flows.retrain [--params params.yaml] [--project .]

``flywheel up`` starts and supervises this process; it needs ``PREFECT_API_URL``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from prefect import serve
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.events import DeploymentEventTrigger
from prefect.schedules import Cron
from prefect.types.entrypoint import EntrypointType

from flows.pipeline import pipeline
from flywheel.core.workspace import Workspace, open_workspace
from flywheel.pipeline.names import dataset_name, dataset_tag, deployment_name
from flywheel.triggers.events import DATA_CHANGED, resource_id

if TYPE_CHECKING:
    from prefect.deployments.runner import RunnerDeployment


def data_changed_trigger(ws: Workspace) -> DeploymentEventTrigger:
    dataset = dataset_name(ws)
    return DeploymentEventTrigger(
        name=f"{deployment_name(ws)}: {dataset} changed",
        description="Retrain when the watcher reports new content in the dataset",
        expect={DATA_CHANGED},
        match={"prefect.resource.id": resource_id(dataset)},
        # The run's parameters come from the event (Jinja, rendered by the server).
        parameters={
            "data_hash": "{{ event.payload.data_hash }}",
            "dataset": "{{ event.resource.name }}",
            "trigger": "event",
        },
    )


def schedules_of(ws: Workspace) -> list[Any]:
    schedule = ws.params.schedule
    return (
        [Cron(schedule.cron, timezone=schedule.timezone, parameters={"trigger": "schedule"})]
        if schedule.cron.strip()
        else []
    )


def build(ws: Workspace) -> RunnerDeployment:
    schedules = schedules_of(ws)
    deployment = pipeline.to_deployment(
        name=deployment_name(ws),
        description=f"Retrain, gate and deploy on {dataset_name(ws)} ({ws.params_file})",
        schedules=schedules,
        concurrency_limit=ConcurrencyLimitConfig(
            limit=1, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE
        ),
        triggers=[data_changed_trigger(ws)],
        parameters={"params_file": str(ws.params_file), "project": str(ws.project)},
        tags=["flywheel", dataset_tag(dataset_name(ws))],
        # Imported by module name: the runner finds it from any working directory.
        entrypoint_type=EntrypointType.MODULE_PATH,
    )
    # to_deployment is sync/async dual; called from sync code it returns the deployment.
    return cast("RunnerDeployment", deployment)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the retrain deployment.")
    parser.add_argument("--params", default=None)
    parser.add_argument("--project", default=None)
    args = parser.parse_args(argv)
    ws = open_workspace(args.params, Path(args.project) if args.project else None)
    serve(build(ws), print_starting_message=False)


if __name__ == "__main__":  # pragma: no cover
    main()
