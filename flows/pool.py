"""The ``retrain`` and ``monitor`` deployments on a process work pool, for team mode: runs
execute on whichever ``flywheel worker`` takes them, each from its own checkout.

    python -m flows.pool --pool flywheel [--params params.yaml] [--project .]

registers (or updates) the deployments, the dataset's concurrency limit and the
automation below, then stays up (so ``flywheel up`` can supervise it like ``serve``).
Triggers, cron and the deployment's concurrency rule are those of ``flows.retrain``; the
monitor runs on ``monitor.cron`` as under ``flows.retrain``'s serve process.

- The code is the worker's own checkout: the pull step cds into ``$FLYWHEEL_CHECKOUT``,
  which each worker's flow-run process reads at run time (never resolved here, or every
  worker would run the deployer's folder).
- One run per dataset across all workers: the run holds the global concurrency limit
  ``flywheel-dataset:<dataset>`` (limit 1) with a lease the server takes back when the
  holder stops renewing it (a dead machine).
- A worker's machine that dies leaves its run Running: no process is left to report the
  crash. The heartbeat automation marks it Crashed once the run stops heart-beating, which
  frees the deployment's slot; the dataset's lease lapses on its own. The watcher then
  announces that data version again (it re-checks the last version it announced, see
  flywheel.triggers.monitor), and any worker takes the new run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import threading
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.runner.storage import LocalStorage

from flows.pipeline import pipeline
from flows.retrain import schedules_of, triggers_of
from flywheel.core.workspace import Workspace, open_workspace
from flywheel.pipeline.names import (
    dataset_limit,
    dataset_name,
    dataset_tag,
    deployment_name,
    full_name,
)

if TYPE_CHECKING:
    from prefect.deployments.runner import RunnerDeployment

# Flow-run heartbeats every 30 s (Prefect's minimum; the worker sets it for its runs);
# a run silent for longer than this is presumed dead with its machine.
HEARTBEAT_S = 30
SILENT_S = 75


class CheckoutStorage(LocalStorage):
    """Code storage whose pull step is "cd into this worker's checkout"."""

    def to_pull_step(self) -> dict[str, Any]:
        return {
            "prefect.deployments.steps.set_working_directory": {
                "directory": "{{ $FLYWHEEL_CHECKOUT }}"
            }
        }


def pool_deployments(ws: Workspace) -> list[RunnerDeployment]:
    """``retrain`` and ``monitor`` as a worker runs them: code from its checkout, paths
    relative to it (the project is wherever the pull step cds)."""
    from flows.monitor import deployment_options as monitor_options
    from flows.monitor import monitor

    storage = CheckoutStorage(str(ws.project))
    params_file = os.path.relpath(ws.params_file, ws.project)
    retrain = pipeline.from_source(source=storage, entrypoint="flows/pipeline.py:pipeline")
    watcher = monitor.from_source(source=storage, entrypoint="flows/monitor.py:monitor")
    # from_source is sync/async dual; called from sync code it returns the flow.
    retrain_deployment = retrain.to_deployment(  # type: ignore[union-attr]
        name=deployment_name(ws),
        description=f"Retrain, gate and deploy on {dataset_name(ws)}",
        schedules=schedules_of(ws),
        concurrency_limit=ConcurrencyLimitConfig(
            limit=1, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE
        ),
        triggers=triggers_of(ws),
        parameters={"params_file": params_file, "dataset_limit": dataset_limit(dataset_name(ws))},
        tags=["flywheel", dataset_tag(dataset_name(ws))],
    )
    monitor_deployment = watcher.to_deployment(  # type: ignore[union-attr]
        **monitor_options(ws), parameters={"params_file": params_file}
    )
    return [retrain_deployment, monitor_deployment]


def deploy_to_pool(ws: Workspace, pool: str) -> list[str]:
    """Register the deployments on ``pool``; returns their ids, retrain's first."""
    deployments = pool_deployments(ws)
    for deployment in deployments:
        deployment.tags.append(f"pool:{pool}")
        deployment.description = f"{deployment.description}, on pool {pool}"
    # One apply each (what prefect.deploy does per item): a failure raises rather than
    # becoming a row in a printed table while the other deployments go on.
    return [str(d.apply(work_pool_name=pool)) for d in deployments]


async def _ensure_pool_and_limit(pool: str, name: str) -> None:
    """The process work pool and the dataset's limit, created when missing; an existing
    pool is left as its owner configured it."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
    from prefect.workers.process import ProcessWorker

    async with get_client() as client:
        try:
            await client.read_work_pool(pool)
        except ObjectNotFound:
            template = ProcessWorker.get_default_base_job_template()
            with contextlib.suppress(ObjectAlreadyExists):
                await client.create_work_pool(
                    WorkPoolCreate(name=pool, type="process", base_job_template=template)
                )
        try:
            await client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            # Another deployer may have won the race; its limit is the same.
            with contextlib.suppress(ObjectAlreadyExists):
                await client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name=name, limit=1)
                )


def _automations(name: str, deployment_ids: list[str]) -> list[Any]:
    from prefect.automations import Automation
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification
    from prefect.server.schemas.states import StateType

    runs = ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]})
    ours = ResourceSpecification(
        {"prefect.resource.id": [f"prefect.deployment.{i}" for i in deployment_ids]}
    )
    finished = {f"prefect.flow-run.{s}" for s in ("Completed", "Failed", "Cancelled", "Crashed")}
    silent = Automation(
        name=f"{name}: crash runs of dead workers",
        description=f"A run with no heartbeat for {SILENT_S}s lost its worker's machine",
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat"},
            expect={"prefect.flow-run.heartbeat", *finished},
            match=runs,
            match_related=ours,
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=SILENT_S),
        ),
        actions=[
            ChangeFlowRunState(
                state=StateType.CRASHED,
                message=f"no heartbeat for {SILENT_S}s: its worker is presumed dead",
            )
        ],
    )
    return [silent]


async def _replace_automations(automations: list[Any]) -> None:
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        for automation in automations:
            for old in await client.read_automations_by_name(automation.name):
                await client.delete_automation(old.id)
            await automation.acreate()


def register(ws: Workspace, pool: str) -> str:
    asyncio.run(_ensure_pool_and_limit(pool, dataset_limit(dataset_name(ws))))
    deployment_ids = deploy_to_pool(ws, pool)
    asyncio.run(_replace_automations(_automations(full_name(ws), deployment_ids)))
    return deployment_ids[0]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Register the retrain and monitor deployments on a pool."
    )
    parser.add_argument("--pool", required=True)
    parser.add_argument("--params", default=None)
    parser.add_argument("--project", default=None)
    parser.add_argument("--once", action="store_true", help="Exit once registered.")
    args = parser.parse_args(argv)
    ws = open_workspace(args.params, Path(args.project) if args.project else None)
    deployment_id = register(ws, args.pool)
    print(f"registered {full_name(ws)} ({deployment_id}) on pool {args.pool}", flush=True)
    if not args.once:
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        stop.wait()


if __name__ == "__main__":  # pragma: no cover
    main()
