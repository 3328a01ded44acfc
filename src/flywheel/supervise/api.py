"""The few Prefect REST calls that ``up``, ``status``, the tests and the benchmark need.

Plain HTTP keeps ``flywheel status`` and the idle supervisor light: importing the Prefect
client costs a second and tens of MB, for what is four GET/POST requests.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx

from flywheel.supervise.auth import CLIENT_AUTH_ENV, auth_string, authorization
from flywheel.supervise.errors import ServerUnavailable


def parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class PrefectApi:
    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.url, timeout=timeout, headers=authorization(auth_string())
        )

    def __enter__(self) -> PrefectApi:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as err:
            raise ServerUnavailable(f"Prefect API at {self.url} unreachable: {err}") from err
        if response.status_code == 401:
            raise ServerUnavailable(
                f"Prefect API at {self.url} refused the request (401 Unauthorized): set "
                f"{CLIENT_AUTH_ENV} to the server's auth string"
            )
        return response

    def healthy(self) -> bool:
        try:
            return self._call("GET", "/health").status_code == 200
        except ServerUnavailable:
            return False

    def deployment(self, full_name: str) -> dict[str, Any] | None:
        flow, name = full_name.split("/", 1)
        response = self._call("GET", f"/deployments/name/{quote(flow)}/{quote(name)}")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return dict(response.json())

    def automations_of(self, deployment_id: str) -> list[dict[str, Any]]:
        response = self._call("GET", f"/automations/related-to/prefect.deployment.{deployment_id}")
        response.raise_for_status()
        return list(response.json())

    def flow_runs(self, deployment_id: str, limit: int = 10) -> list[dict[str, Any]]:
        """The deployment's runs, newest expected start first."""
        response = self._call(
            "POST",
            "/flow_runs/filter",
            json={
                "deployments": {"id": {"any_": [deployment_id]}},
                "sort": "EXPECTED_START_TIME_DESC",
                "limit": limit,
            },
        )
        response.raise_for_status()
        return list(response.json())

    def task_runs(self, flow_run_id: str) -> list[dict[str, Any]]:
        response = self._call(
            "POST",
            "/task_runs/filter",
            json={"flow_runs": {"id": {"any_": [flow_run_id]}}, "sort": "EXPECTED_START_TIME_ASC"},
        )
        response.raise_for_status()
        return list(response.json())

    def artifacts(self, flow_run_id: str) -> list[dict[str, Any]]:
        response = self._call(
            "POST",
            "/artifacts/filter",
            json={"artifacts": {"flow_run_id": {"any_": [flow_run_id]}}},
        )
        response.raise_for_status()
        return list(response.json())

    def crash(self, flow_run_id: str, message: str) -> bool:
        """Mark a run whose process is gone as Crashed (which also frees its concurrency
        slot at once instead of when its lease expires); False if the server refused."""
        response = self._call(
            "POST",
            f"/flow_runs/{flow_run_id}/set_state",
            json={"state": {"type": "CRASHED", "name": "Crashed", "message": message}},
        )
        response.raise_for_status()
        return bool(response.json().get("status") == "ACCEPT")

    def workers(self, pool: str) -> list[dict[str, Any]]:
        """The pool's workers with their status (ONLINE/OFFLINE) and last heartbeat."""
        response = self._call("POST", f"/work_pools/{quote(pool)}/workers/filter", json={})
        if response.status_code == 404:
            return []
        response.raise_for_status()
        return list(response.json())

    def events(self, name: str, limit: int = 50) -> list[dict[str, Any]]:
        """Recent events called ``name``, newest first (the server keeps a day by default)."""
        response = self._call(
            "POST", "/events/filter", json={"filter": {"event": {"name": [name]}}, "limit": limit}
        )
        response.raise_for_status()
        return list(response.json().get("events", []))


def run_summary(run: dict[str, Any]) -> dict[str, Any]:
    state = run.get("state") or {}
    return {
        "id": run["id"],
        "name": run["name"],
        "state_type": state.get("type"),
        "state_name": state.get("name"),
        "message": state.get("message"),
        "start_time": run.get("start_time"),
        "end_time": run.get("end_time"),
        "expected_start_time": run.get("expected_start_time"),
        "tags": run.get("tags", []),
        # The worker writes its name into the run's labels when it takes the run.
        "worker": (run.get("labels") or {}).get("prefect.worker.name"),
        "work_pool": run.get("work_pool_name"),
        "parameters": {
            k: v for k, v in (run.get("parameters") or {}).items() if k in ("data_hash", "trigger")
        },
    }


def schedules_of(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for item in deployment.get("schedules") or []:
        schedule = item.get("schedule") or {}
        out.append(
            {
                "cron": schedule.get("cron"),
                "interval": schedule.get("interval"),
                "rrule": schedule.get("rrule"),
                "timezone": schedule.get("timezone"),
                "active": item.get("active", True),
            }
        )
    return out


def concurrency_limit_of(deployment: dict[str, Any]) -> int | None:
    limit = (deployment.get("global_concurrency_limit") or {}).get("limit")
    return int(limit) if limit is not None else deployment.get("concurrency_limit")
