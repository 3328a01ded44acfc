"""Debouncing: a burst of file events becomes one change, once the folder is quiet."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Debouncer:
    """Fires once the source has been quiet for ``quiet_s`` seconds after a change."""

    def __init__(self, quiet_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.quiet_s = quiet_s
        self._clock = clock
        self._lock = threading.Lock()
        self._last: float | None = None

    def changed(self, delay: float = 0.0) -> None:
        """Note a change; ``delay`` pushes the deadline further (e.g. to retry later)."""
        with self._lock:
            self._last = self._clock() + delay

    def pending(self) -> bool:
        with self._lock:
            return self._last is not None

    def take(self) -> bool:
        """True (once) when a change is pending and the quiet period has passed."""
        with self._lock:
            if self._last is None or self._clock() - self._last < self.quiet_s:
                return False
            self._last = None
            return True
