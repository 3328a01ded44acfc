"""The ``retrain`` deployment on a process work pool, for team mode: runs execute on
whichever ``flywheel worker`` takes them, each from its own checkout.

    python -m flows.pool --pool flywheel [--params params.yaml] [--project .]

registers (or updates) the deployment, the dataset's concurrency limit and the two
automations below, then stays up (so ``flywheel up`` can supervise it like ``serve``).
Triggers, cron and the deployment's concurrency rule are those of ``flows.retrain``.

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
from typing import Any

from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.runner.storage import LocalStorage

from flows.pipeline import pipeline
from flows.retrain import data_changed_trigger, schedules_of
from flywheel.core.workspace import Workspace, open_workspace
from flywheel.pipeline.names import (
    dataset_limit,
    dataset_name,
    dataset_tag,
    deployment_name,
    full_name,
)

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


def deploy_to_pool(ws: Workspace, pool: str) -> str:
    """Register the deployment on ``pool``; returns its id."""
    source = pipeline.from_source(
        source=CheckoutStorage(str(ws.project)), entrypoint="flows/pipeline.py:pipeline"
    )
    deployment_id = source.deploy(  # type: ignore[union-attr]
        name=deployment_name(ws),
        work_pool_name=pool,
        description=f"Retrain, gate and deploy on {dataset_name(ws)}, on pool {pool}",
        schedules=schedules_of(ws),
        concurrency_limit=ConcurrencyLimitConfig(
            limit=1, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE
        ),
        triggers=[data_changed_trigger(ws)],
        # Relative to the worker's checkout: the project is wherever the pull step cds.
        parameters={
            "params_file": os.path.relpath(ws.params_file, ws.project),
            "dataset_limit": dataset_limit(dataset_name(ws)),
        },
        tags=["flywheel", dataset_tag(dataset_name(ws)), f"pool:{pool}"],
        print_next_steps=False,
        ignore_warnings=True,
        build=False,
        push=False,
    )
    return str(deployment_id)


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


def _automations(name: str, deployment_id: str) -> list[Any]:
    from prefect.automations import Automation
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification
    from prefect.server.schemas.states import StateType

    runs = ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]})
    ours = ResourceSpecification({"prefect.resource.id": f"prefect.deployment.{deployment_id}"})
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
    deployment_id = deploy_to_pool(ws, pool)
    asyncio.run(_replace_automations(_automations(full_name(ws), deployment_id)))
    return deployment_id


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Register the retrain deployment on a pool.")
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
