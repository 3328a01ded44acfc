"""A replica's prediction log, shipped to the team remote in the background.

Every ``remote.log_ship_interval_s``, and once more at shutdown, the new complete lines go
to the remote (:class:`flywheel.monitor.shared_log.LogShipper`); a store that does not
answer is counted and logged, the lines stay on this disk, and the next interval tries
again. Requests never wait on it.
"""

from __future__ import annotations

import asyncio
import logging

import anyio.to_thread
from prometheus_client import Counter

from flywheel.core.errors import RemoteError
from flywheel.core.remote_section import RemoteConfig
from flywheel.monitor.prediction_log import PredictionLog
from flywheel.monitor.shared_log import LogShipper
from flywheel.remote.objects import ObjectStore
from flywheel.serving.telemetry import ServingMetrics

log = logging.getLogger("flywheel.serving")


class ShippingTask:
    def __init__(self, predictions: PredictionLog, remote: RemoteConfig, m: ServingMetrics):
        self.shipper = LogShipper(predictions, ObjectStore(remote))
        self.interval_s = remote.log_ship_interval_s
        self._bytes = Counter(
            "flywheel_prediction_log_shipped_bytes",
            "Prediction-log bytes this replica shipped to the team remote.",
            registry=m.registry,
        )
        self._errors = Counter(
            "flywheel_prediction_log_ship_errors",
            "Failed shipments of the prediction log (the lines stay here for the next try).",
            registry=m.registry,
        )

    def ship(self) -> None:
        """One shipment; blocking, never raises."""
        try:
            self._bytes.inc(self.shipper.ship())
        except RemoteError as err:
            self._errors.inc()
            log.error("prediction log not shipped (kept here, tried again): %s", err)
        except Exception:  # shipping must outlive any surprise
            self._errors.inc()
            log.exception("prediction log shipping failed")

    async def ship_forever(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            await anyio.to_thread.run_sync(self.ship)
