"""``flywheel status``: the server, the deployment and its schedule, the last runs, and the
model in production, from the state file, the Prefect API and the registry."""

from __future__ import annotations

import os
from typing import Any

from flywheel.core.workspace import Workspace
from flywheel.pipeline.names import full_name
from flywheel.supervise.api import PrefectApi, concurrency_limit_of, run_summary, schedules_of
from flywheel.supervise.errors import ServiceError
from flywheel.supervise.prefect_server import ui_url
from flywheel.supervise.state import ServicePaths, running_state


def _production(ws: Workspace) -> dict[str, Any] | None:
    from flywheel.release.registry import Registry

    card = Registry(ws.layout.registry).production()
    if card is None:
        return None
    return {
        "version": card.version,
        "data_hash": card.data_hash,
        "created_at": card.created_at,
        "variant": card.variant,
        "metrics": card.metrics,
    }


def _deployment(api: PrefectApi, name: str, runs: int) -> dict[str, Any] | None:
    deployment = api.deployment(name)
    if deployment is None:
        return None
    deployment_id = str(deployment["id"])
    return {
        "name": name,
        "id": deployment_id,
        "paused": deployment.get("paused"),
        "schedules": schedules_of(deployment),
        "concurrency_limit": concurrency_limit_of(deployment),
        "triggers": [
            {
                "name": a.get("name"),
                "enabled": a.get("enabled"),
                "expect": sorted((a.get("trigger") or {}).get("expect") or []),
            }
            for a in api.automations_of(deployment_id)
        ],
        "runs": [run_summary(r) for r in api.flow_runs(deployment_id, limit=runs)],
        "pool": _pool(api, deployment.get("work_pool_name")),
    }


def _pool(api: PrefectApi, name: str | None) -> dict[str, Any] | None:
    if not name:
        return None
    return {
        "name": name,
        "workers": [
            {
                "name": w.get("name"),
                "status": w.get("status"),
                "last_heartbeat": w.get("last_heartbeat_time"),
            }
            for w in api.workers(name)
        ],
    }


def collect(ws: Workspace, runs: int = 5) -> dict[str, Any]:
    up = running_state(ServicePaths(ws.project))
    api_url = os.environ.get("PREFECT_API_URL") or (up or {}).get("api_url")
    out: dict[str, Any] = {
        "project": str(ws.project),
        "up": None
        if up is None
        else {
            k: up.get(k)
            for k in (
                "pid",
                "started_at",
                "ready",
                "own_server",
                "children",
                "database",
                "pool",
                "roles",
            )
        },
        "server": {"api_url": api_url, "ui_url": ui_url(api_url) if api_url else None},
        "deployment": None,
        "production": _production(ws),
    }
    if not api_url:
        out["server"]["healthy"] = False
        return out
    with PrefectApi(api_url) as api:
        out["server"]["healthy"] = api.healthy()
        if out["server"]["healthy"]:
            try:
                out["deployment"] = _deployment(api, full_name(ws), runs)
            except (ServiceError, OSError) as err:
                out["server"]["error"] = str(err)
    return out


def _pool_lines(pool: dict[str, Any] | None) -> list[str]:
    if pool is None:
        return ["  runs on     the serve process of `flywheel up`"]
    workers = ", ".join(f"{w['name']} ({str(w['status']).lower()})" for w in pool["workers"])
    return [f"  work pool   {pool['name']}: {workers or 'no workers yet'}"]


def render(status: dict[str, Any]) -> str:
    lines = [f"project     {status['project']}"]
    up = status["up"]
    if up is None:
        lines.append("up          not running")
    else:
        children = ", ".join(
            f"{name} pid {c['pid']}" + (f" (restarts: {c['restarts']})" if c["restarts"] else "")
            for name, c in (up.get("children") or {}).items()
        )
        lines.append(f"up          pid {up['pid']} since {up['started_at']}: {children}")
    server = status["server"]
    if server["api_url"]:
        health = "healthy" if server.get("healthy") else "NOT answering"
        database = (up or {}).get("database")
        on = f", {database}" if database else ""
        lines.append(f"server      {server['ui_url']} ({health}{on})")
    else:
        lines.append("server      none (run `flywheel up`, or set PREFECT_API_URL)")
    deployment = status["deployment"]
    if deployment is None:
        if server.get("healthy"):
            lines.append("deployment  not registered")
    else:
        crons = [
            f"cron '{s['cron']}' {s['timezone'] or 'UTC'}" + ("" if s["active"] else " (inactive)")
            for s in deployment["schedules"]
        ]
        paused = " (paused)" if deployment["paused"] else ""
        lines.append(f"deployment  {deployment['name']}{paused}")
        lines.append(f"  schedule    {'; '.join(crons) or 'none'}")
        lines.append(
            "  triggers    "
            + (", ".join(", ".join(t["expect"]) for t in deployment["triggers"]) or "none")
        )
        lines.append(f"  concurrency {deployment['concurrency_limit']}")
        lines.extend(_pool_lines(deployment["pool"]))
        lines.append("  last runs" if deployment["runs"] else "  last runs   none yet")
        for run in deployment["runs"]:
            when = (run["start_time"] or run["expected_start_time"] or "")[:19]
            message = f"  {run['message']}" if run["state_type"] == "FAILED" else ""
            where = f"  on {run['worker']}" if run.get("worker") else ""
            lines.append(f"    {when}  {run['name']:<12} {run['state_name']}{where}{message}")
    production = status["production"]
    if production is None:
        lines.append("production  none")
    else:
        lines.append(
            f"production  {production['version']} ({production['variant']}) data"
            f" {production['data_hash'][:8]} since {production['created_at']}"
        )
    return "\n".join(lines)
