"""``flywheel remote status``: what is where between this machine and the team remote.

Registry: the versions on the remote, production there, which versions this machine
has not mirrored. DVC: what this workspace holds that the remote lacks (not pushed) and
what the workspace's DVC files name that this machine lacks (missing locally), as
``dvc status --cloud`` tells them; run-cache entries on either side only. Prediction log:
how many replicas shipped theirs, and what this machine's server has not shipped yet.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flywheel.core.workspace import Workspace


def remote_status(ws: Workspace) -> dict[str, Any]:
    """The report as a dict (the CLI prints it); raises the one-line remote errors."""
    from flywheel.core.errors import RemoteError
    from flywheel.release.registry.remote import RemoteRegistry
    from flywheel.remote.objects import ObjectStore

    remote = ws.params.remote
    if not remote.enabled:
        raise RemoteError("remote.url is empty: this project keeps everything local")
    store = ObjectStore(remote)
    store.ping()
    registry = RemoteRegistry(ws.layout.registry, store)
    versions = registry.versions()
    local = set(registry.local_versions())
    return {
        "url": remote.url,
        "endpoint_url": remote.endpoint_url or None,
        "registry": {
            "versions": versions,
            "production": registry.production_version(),
            "missing_locally": [v for v in versions if v not in local],
            "only_local": sorted(local - set(versions), key=lambda n: int(n[1:])),
        },
        "dvc": _dvc_status(ws, store),
        "prediction_log": _log_status(ws, store),
    }


def _log_status(ws: Workspace, store: Any) -> dict[str, Any]:
    """The prediction log: replicas that shipped one, and what this machine's server has
    logged that is not shipped yet (it ships every remote.log_ship_interval_s)."""
    from flywheel.monitor.prediction_log import PredictionLog
    from flywheel.monitor.shared_log import LogShipper

    prefix = store.key("predictions") + "/"
    keys = store.keys(prefix, "listing the shared prediction log")
    local = PredictionLog(ws.layout.prediction_log, ws.params.monitor)
    return {
        "replicas": len({k[len(prefix) :].split("/", 1)[0] for k in keys}),
        "chunks": len(keys),
        "not_shipped_bytes": LogShipper(local, store).backlog() if local.segments() else 0,
    }


def _dvc_status(ws: Workspace, store: Any) -> dict[str, Any]:
    from flywheel.pipeline import dvc, remote

    config = remote.dvc_config(ws.params.remote)
    with (
        remote.transfer_errors(ws.params.remote, "comparing this workspace with the remote"),
        dvc.open_repo(ws.root, config) as repo,
    ):
        cloud = repo.status(cloud=True)
        legacy = Path(repo.cache.legacy.path)
    not_pushed = sorted(k for k, v in cloud.items() if v == "new")
    missing = sorted(k for k, v in cloud.items() if v in ("deleted", "missing"))
    prefix = store.key("dvc", "runs") + "/"
    there = {k[len(prefix) :] for k in store.keys(prefix, "listing the remote run cache")}
    here = remote.local_runs(legacy)
    return {
        "not_pushed": not_pushed,
        "missing_locally": missing,
        "run_cache": {
            "remote": len(there),
            "local": len(here),
            "not_pushed": len(here - there),
            "not_pulled": len(there - here),
        },
    }
