"""Restart delays for a supervised process: exponential, capped, forgiven after a good run."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Backoff:
    initial: float = 1.0
    factor: float = 2.0
    maximum: float = 30.0
    # A process that stayed up this long before dying is treated as healthy again, so a
    # crash once a day restarts in ``initial`` seconds rather than ``maximum``.
    stable_after: float = 60.0
    failures: int = 0

    def next_delay(self, uptime: float) -> float:
        """Seconds to wait before restarting a process that ran ``uptime`` seconds."""
        if uptime >= self.stable_after:
            self.failures = 0
        delay = min(self.initial * self.factor**self.failures, self.maximum)
        self.failures += 1
        return delay
