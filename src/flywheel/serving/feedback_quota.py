"""Who sent a feedback record, and how much the inbox and each sender may hold.

Feedback is written by clients and read by people, so the inbox is bounded three ways
(``serve.feedback_max_records``, ``serve.feedback_max_bytes`` of stored instances, and
``serve.feedback_max_per_sender`` records from one sender) until a review empties it.

A sender is a hash: of the bearer token and the client's address when the server checks
tokens (one token may be shared by many clients), of the address alone otherwise (an
unchecked token is whatever a client chose to send, so it identifies nobody). The hash,
never the token, is written to the record's sidecar.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from flywheel.core.service_sections import ServeConfig
from flywheel.serving.requests import RequestRejectedError

# When a limit is reached the inbox is counted again (a review may have emptied it), but
# at most this often: a client hammering a full inbox must not make the server walk it
# on every request.
_RECOUNT_S = 5.0


def sender_id(address: str | None, token: str | None) -> str:
    source = f"address:{address or 'unknown'}"
    if token is not None:
        source = f"bearer:{token}|{source}"
    return hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest()[:24]


@dataclass
class _Usage:
    records: int = 0
    bytes: int = 0
    senders: Counter[str] = field(default_factory=Counter)


def _count(inbox: Path) -> _Usage:
    """Records of ``<inbox>/<label>/<id>.json`` + ``<id><suffix>`` (see :mod:`.feedback`)."""
    usage = _Usage()
    if not inbox.is_dir():
        return usage
    for sidecar in inbox.glob("*/*.json"):
        if sidecar.name.endswith(".instance.json"):
            continue
        with contextlib.suppress(OSError, ValueError):
            meta = json.loads(sidecar.read_text())
            stored = inbox / str(meta.get("file", ""))
            usage.records += 1
            usage.bytes += stored.stat().st_size if stored.is_file() else 0
            usage.senders[str(meta.get("sender", ""))] += 1
    return usage


class FeedbackQuota:
    def __init__(self, inbox: Path, serve: ServeConfig) -> None:
        self.inbox = Path(inbox)
        self.max_records = serve.feedback_max_records
        self.max_bytes = serve.feedback_max_bytes
        self.max_per_sender = serve.feedback_max_per_sender
        self._lock = threading.Lock()
        self._usage: _Usage | None = None
        self._counted_at = 0.0

    def _refusal(self, usage: _Usage, sender: str, size: int) -> str | None:
        if usage.records + 1 > self.max_records:
            return f"the feedback inbox holds {usage.records} records (serve.feedback_max_records)"
        if usage.bytes + size > self.max_bytes:
            return f"the feedback inbox holds {usage.bytes} bytes (serve.feedback_max_bytes)"
        if usage.senders[sender] + 1 > self.max_per_sender:
            return (
                f"this sender has {usage.senders[sender]} records in the feedback inbox "
                "(serve.feedback_max_per_sender)"
            )
        return None

    @contextlib.contextmanager
    def admit(self, sender: str, size: int) -> Iterator[None]:
        """Held while one record of ``size`` bytes from ``sender`` is written; raises a 429
        when it would pass a limit. Blocking: call it from a worker thread."""
        with self._lock:
            now = time.monotonic()
            if self._usage is None:
                self._usage, self._counted_at = _count(self.inbox), now
            refusal = self._refusal(self._usage, sender, size)
            if refusal and now - self._counted_at >= _RECOUNT_S:
                self._usage, self._counted_at = _count(self.inbox), now
                refusal = self._refusal(self._usage, sender, size)
            if refusal:
                raise RequestRejectedError(
                    429,
                    "feedback_quota",
                    f"feedback refused: {refusal}; send more once the inbox is reviewed",
                )
            yield
            self._usage.records += 1
            self._usage.bytes += size
            self._usage.senders[sender] += 1
