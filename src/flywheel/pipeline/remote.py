"""DVC's remote on the team's object store: what a run pulls before it starts and pushes
before it deploys, so another machine (or a worker) reuses the data and the run cache.

The calls a worker needs are these three: :func:`pull_data` (exactly one data version,
by hash), :func:`pull_run_cache` (the run-cache entries, so cached stages are restored
instead of run; :func:`flywheel.pipeline.dvc.reproduce` then pulls each restored stage's
outputs) and :func:`push_run` (data, stage outputs and run cache, checked on the remote
afterwards: a push that did not land entirely is an error, never "done").
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from flywheel.core.errors import DataError, RemoteError, RemoteUnavailable
from flywheel.core.remote_section import RemoteConfig
from flywheel.core.workspace import Workspace
from flywheel.pipeline import dvc

log = logging.getLogger(__name__)

REMOTE_NAME = "flywheel"


def dvc_url(remote: RemoteConfig) -> str:
    return f"{remote.url}/dvc"


def dvc_config(remote: RemoteConfig) -> dict[str, Any] | None:
    """DVC config naming the team remote (passed to ``Repo``; nothing lands in
    ``.dvc/config``, so a params change is all a team needs); None when local-only."""
    if not remote.enabled:
        return None
    section: dict[str, Any] = {
        "url": dvc_url(remote),
        "connect_timeout": remote.connect_timeout_s,
        "read_timeout": remote.read_timeout_s,
    }
    if remote.endpoint_url:
        section["endpointurl"] = remote.endpoint_url
    return {"core": {"remote": REMOTE_NAME}, "remote": {REMOTE_NAME: section}}


@contextlib.contextmanager
def transfer_errors(remote: RemoteConfig, doing: str) -> Iterator[None]:
    """DVC's and botocore's transfer failures as one line naming the URL and ``doing``."""
    from botocore.exceptions import BotoCoreError, ClientError
    from dvc.exceptions import DownloadError, DvcException, UploadError

    where = dvc_url(remote) + (f" (endpoint {remote.endpoint_url})" if remote.endpoint_url else "")
    try:
        yield
    except (DownloadError, UploadError) as err:
        # DVC counts the failed files and logs each cause: unreachable, or not there.
        raise RemoteUnavailable(
            f"{doing} with the DVC remote {where} failed: {err} (is the store up, and does "
            "it hold that version? `flywheel remote status` tells)"
        ) from err
    except (BotoCoreError, OSError) as err:
        raise RemoteUnavailable(
            f"cannot reach the DVC remote {where} while {doing}: {str(err).splitlines()[0]}"
        ) from err
    except (DvcException, ClientError) as err:
        raise RemoteError(f"{doing} with the DVC remote {where} failed: {err}") from err


@contextlib.contextmanager
def restore_errors(remote: RemoteConfig, stage: str) -> Iterator[None]:
    """Around a stage: only DVC's download failures (a stage body's own errors pass)."""
    from botocore.exceptions import BotoCoreError
    from dvc.exceptions import DownloadError

    try:
        yield
    except (DownloadError, BotoCoreError) as err:
        raise RemoteUnavailable(
            f"cannot restore stage {stage} from the DVC remote {dvc_url(remote)}: "
            f"{str(err).splitlines()[0]}; run again once the store is reachable"
        ) from err


def pull_data(ws: Workspace, wanted: str) -> bool:
    """Make the data folder exactly version ``wanted`` (a DVC ``.dir`` hash) from the
    remote; returns whether it pulled. The folder is replaced only when it is absent,
    empty, or the version ``data.dvc`` records (a worker's checkout after its last run:
    that version is in the cache and on the remote). A folder holding anything else holds
    edits made here: it is left alone, and the run uses what is on disk, as locally."""
    data = ws.layout.data
    remote = ws.params.remote
    if not remote.enabled:
        return False
    dvc_file = dvc.dvc_file_of(ws.project, data)
    if dvc_file is None:
        raise DataError(f"{data} is outside the project: DVC cannot pull it there")
    before = dvc_file.read_bytes() if dvc_file.is_file() else None
    if data.is_dir() and any(data.iterdir()) and not _replaceable(data, wanted, dvc_file):
        return False
    rel = os.path.relpath(data.resolve(), dvc_file.parent)
    # A .dvc file naming the wanted hash only while DVC pulls it: the file records
    # validated data only, and this version is validated by the run that follows.
    dvc_file.write_text(f"outs:\n- md5: {wanted}\n  path: {rel}\n  hash: md5\n")
    try:
        with (
            transfer_errors(remote, f"pulling data version {wanted[:8]}"),
            dvc.open_repo(ws.project, dvc_config(remote)) as repo,
        ):
            repo.pull(targets=[str(dvc_file)], force=True)
    finally:
        if before is None:
            dvc_file.unlink(missing_ok=True)
        else:
            dvc_file.write_bytes(before)
    log.info("pulled data version %s from %s", wanted[:8], dvc_url(remote))
    return True


def _replaceable(data: Path, wanted: str, dvc_file: Path) -> bool:
    from flywheel.datasets.hashing import data_hash

    current = data_hash(data)
    return current != wanted and dvc_file.is_file() and current == dvc.recorded_hash(dvc_file)


def pull_run_cache(ws: Workspace) -> None:
    """Bring the remote's run-cache entries down (their outputs come with each restore)."""
    remote = ws.params.remote
    if not remote.enabled:
        return
    with (
        transfer_errors(remote, "pulling the run cache"),
        dvc.open_repo(ws.root, dvc_config(remote)) as repo,
    ):
        repo.stage_cache.pull(None)


def push_run(ws: Workspace) -> int:
    """Push the data version, every stage's outputs and the run cache; then check that the
    remote holds all of it. Returns the number of objects transferred."""
    remote = ws.params.remote
    if not remote.enabled:
        return 0
    with (
        transfer_errors(remote, "pushing the run's data, outputs and run cache"),
        dvc.open_repo(ws.root, dvc_config(remote)) as repo,
    ):
        pushed = int(repo.push(run_cache=True) or 0) + _push_uncached_outs(repo)
        missing = sorted(repo.status(cloud=True))  # only what is not there
        runs = local_runs(Path(repo.cache.legacy.path))
    if missing:
        raise RemoteError(f"push to {dvc_url(remote)} incomplete: {', '.join(missing)} missing")
    _check_runs_pushed(remote, runs)
    log.info("pushed %d object(s) to %s", pushed, dvc_url(remote))
    return pushed


def _push_uncached_outs(repo: Any) -> int:
    """Outputs with ``cache: false`` (reports, metrics): DVC's run cache keeps a copy of
    each, and restoring the stage elsewhere needs it, but ``push --run-cache`` never sends
    them (they are not the workspace's cached objects), so the stage would run again."""
    wanted = [
        out.hash_info
        for stage in repo.index.stages
        for out in stage.outs
        if not out.use_cache
        and out.hash_info
        and out.hash_info.value
        # Only what a run-cache entry kept (validate's report never is: not cacheable).
        and repo.cache.local.exists(out.hash_info.value)
    ]
    if not wanted:
        return 0
    result = repo.cloud.push(wanted)
    if result.failed:
        names = ", ".join(sorted(str(h.value) for h in result.failed))
        raise RemoteUnavailable(f"push incomplete: uncached outputs {names} not sent")
    return len(result.transferred)


def local_runs(legacy_cache: Path) -> set[str]:
    runs = legacy_cache / "runs"
    if not runs.is_dir():
        return set()
    return {str(p.relative_to(runs)) for p in runs.rglob("*") if p.is_file()}


def _check_runs_pushed(remote: RemoteConfig, runs: set[str]) -> None:
    """DVC only logs a run-cache entry it failed to copy; listing the remote tells."""
    from flywheel.remote.objects import ObjectStore

    store = ObjectStore(remote)
    prefix = store.key("dvc", "runs") + "/"
    there = {k[len(prefix) :] for k in store.keys(prefix, "checking the pushed run cache")}
    lost = sorted(runs - there)
    if lost:
        raise RemoteUnavailable(
            f"push to {dvc_url(remote)} incomplete: {len(lost)} run-cache entr(y/ies) missing "
            f"(first {lost[0]}); run again to finish it"
        )
