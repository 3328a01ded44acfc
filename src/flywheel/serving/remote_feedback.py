"""The feedback inbox on the team remote: every replica's records in one place.

A record is written as on a local server (:class:`FeedbackStore`: sidecar, then the
instance), then each file is uploaded create-only (``If-None-Match: *``) under
``<remote.url>/feedback/<label>/``, sidecar first, so the instance object appearing is the
commit point there too, and nothing on the remote is ever overwritten. A record the remote
did not take is removed here and refused with a 503: the client was never told it was
stored, and retries.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flywheel.core.errors import RemoteError
from flywheel.core.remote_section import RemoteConfig
from flywheel.families.base import StoredInstance
from flywheel.remote.objects import ObjectStore
from flywheel.serving.feedback import FeedbackStore
from flywheel.serving.requests import RequestRejectedError

log = logging.getLogger("flywheel.serving")


class RemoteFeedbackStore(FeedbackStore):
    def __init__(self, inbox: Path, remote: RemoteConfig, data_dir: Path | None = None) -> None:
        super().__init__(inbox, data_dir=data_dir)
        self.store = ObjectStore(remote)

    def key(self, label: str, name: str) -> str:
        return self.store.key("feedback", label, name)

    def save(
        self,
        label: str | float,
        stored: StoredInstance,
        meta: dict[str, Any],
        folder_name: str | None = None,
    ) -> str:
        record_id = super().save(label, stored, meta, folder_name)
        name = folder_name if folder_name is not None else str(label)
        folder = self.inbox / name
        files = [folder / f"{record_id}.json", folder / f"{record_id}{stored.suffix}"]
        try:
            for path in files:
                self.store.put(
                    self.key(name, path.name),
                    path.read_bytes(),
                    "storing a feedback record",
                    create_only=True,
                )
        except RemoteError as err:
            for path in reversed(files):
                path.unlink(missing_ok=True)
            log.error("feedback record %s not stored: %s", record_id, err)
            raise RequestRejectedError(
                503, "remote_unavailable", "feedback cannot be stored right now; retry later"
            ) from None
        return record_id
