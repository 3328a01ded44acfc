"""Corrected labels from users, kept as new files in the feedback inbox.

Each record is ``<inbox>/<label>/<id><suffix>`` (the instance, e.g. a PNG; observed values
of a regression go to ``<inbox>/observed/``) plus ``<id>.json`` (when, which model, what it
was, and for feedback by prediction id the prediction it corrects). Both are written
whole, fsynced and renamed into place; the sidecar goes first, so the instance file
appearing is the commit point for a reader that walks the inbox like an image folder.
Nothing is ever overwritten, and the inbox is never the training data folder: feedback is
reviewed before it joins the data.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flywheel.core.atomic import atomic_write_bytes
from flywheel.core.errors import ConfigError
from flywheel.families.base import StoredInstance

_ID = re.compile(r"^[0-9a-f]{32}$")
# The inbox folder of observed values (regression feedback has no class to name one).
OBSERVED = "observed"


class FeedbackStore:
    def __init__(self, inbox: Path, data_dir: Path | None = None) -> None:
        inbox = Path(inbox).resolve()
        if data_dir is not None:
            data = Path(data_dir).resolve()
            if inbox == data or inbox.is_relative_to(data) or data.is_relative_to(inbox):
                raise ConfigError(
                    f"data.feedback_inbox ({inbox}) must lie outside the training data "
                    f"folder ({data})"
                )
        self.inbox = inbox

    def save(
        self,
        label: str | float,
        stored: StoredInstance,
        meta: dict[str, Any],
        folder_name: str | None = None,
    ) -> str:
        """Keep one record; ``folder_name`` defaults to the label (a class), regression
        values go to a folder of their own (:data:`OBSERVED`)."""
        name = folder_name if folder_name is not None else str(label)
        if not name or name.startswith(".") or "/" in name or "\\" in name or "\x00" in name:
            # Labels come from the model card, but a folder name must never escape the inbox.
            raise ValueError(f"label {name!r} cannot be a folder name")
        record_id = uuid.uuid4().hex
        folder = self.inbox / name
        sidecar = {
            "id": record_id,
            "label": label,
            "file": f"{name}/{record_id}{stored.suffix}",
            "received_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            **meta,
        }
        atomic_write_bytes(
            folder / f"{record_id}.json", (json.dumps(sidecar, indent=2) + "\n").encode()
        )
        atomic_write_bytes(
            folder / f"{record_id}{stored.suffix}", stored.data, fault="feedback.write"
        )
        return record_id

    def load(self, record_id: str) -> dict[str, Any] | None:
        if not _ID.match(record_id) or not self.inbox.is_dir():
            return None
        for sidecar in self.inbox.glob(f"*/{record_id}.json"):
            return dict(json.loads(sidecar.read_text()))
        return None
