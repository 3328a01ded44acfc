"""A serving replica following the production alias on the team's object store.

Every ``remote.poll_interval_s`` the follower asks for the remote alias with the ETag it
last saw (``If-None-Match``: an unchanged alias costs one 304). When it moved, the named
version is downloaded whole into the local registry mirror and sha256-checked against its
card (:meth:`RemoteRegistry.fetch_version`); only then is the alias mirrored into the
local registry, where :class:`~flywheel.serving.model_holder.ModelHolder` warms the model
and swaps it in as for a local promotion. A version that fails its check is refused and
never mirrored; a store that does not answer changes nothing here: the replica keeps
serving what it has, and ``/readyz`` and ``/metrics`` say the remote is unreachable.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio.to_thread
from prometheus_client import Counter, Gauge

from flywheel.core.atomic import atomic_write_bytes
from flywheel.core.errors import RegistryError, RemoteError, RemoteUnavailable
from flywheel.core.remote_section import RemoteConfig
from flywheel.release.registry.remote import RemoteRegistry
from flywheel.remote.objects import ObjectStore
from flywheel.serving.telemetry import ServingMetrics

log = logging.getLogger("flywheel.serving")


class RemoteFollower:
    def __init__(self, root: Path, remote: RemoteConfig, metrics: ServingMetrics) -> None:
        self.registry = RemoteRegistry(root, ObjectStore(remote))
        self.interval_s = remote.poll_interval_s
        self.reachable: bool | None = None  # None: not asked yet
        self.last_error: str | None = None
        self.following: str | None = None  # the version the mirrored alias names
        self._etag: str | None = None
        self._reachable = Gauge(
            "flywheel_remote_reachable",
            "Whether the last look at the remote production alias got an answer (1) or not.",
            registry=metrics.registry,
        )
        self._errors = Counter(
            "flywheel_remote_follow_errors",
            "Failed looks at the remote alias or refused downloads, by reason.",
            ["reason"],
            registry=metrics.registry,
        )

    @property
    def status(self) -> str:
        return {None: "unknown", True: "reachable", False: "unreachable"}[self.reachable]

    def _failed(self, reason: str, err: Exception) -> None:
        self.last_error = str(err)
        self._errors.labels(reason=reason).inc()
        log.error("remote follow (%s): %s; still serving what this replica has", reason, err)

    def check(self) -> bool:
        """One look at the remote alias; True when the local alias was moved. Blocking."""
        store, key = self.registry.store, self.registry.alias_key
        try:
            blob = store.get(key, "following the production alias", if_none_match=self._etag)
        except RemoteError as err:
            self.reachable = False
            self._reachable.set(0)
            self._failed("unreachable" if isinstance(err, RemoteUnavailable) else "remote", err)
            return False
        self.reachable = True
        self._reachable.set(1)
        if blob is None or blob.unchanged:
            return False
        try:
            alias = self.registry._parse_alias(blob.body.decode(errors="replace"), store.uri(key))
            version = alias["version"]
            if version is not None:
                self.registry.fetch_version(version)
        except RemoteUnavailable as err:
            self._failed("unreachable", err)  # mid-download: tried again next look
            return False
        except RegistryError as err:
            self._etag = blob.etag  # refused until the alias moves again
            self._failed("integrity", err)
            return False
        self.registry.root.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.registry.alias_path, blob.body)
        self._etag, self.following, self.last_error = blob.etag, version, None
        log.info("remote alias names %s: mirrored, handing over to the model holder", version)
        return True

    async def check_async(self) -> bool:
        return await anyio.to_thread.run_sync(self.check)

    async def follow_forever(self, on_moved: Callable[[], Awaitable[object]]) -> None:
        """Look every interval; ``on_moved`` runs after each move (the holder's check)."""
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                if await self.check_async():
                    await on_moved()
            except Exception:  # the follower must outlive any surprise
                log.exception("remote follow failed")
