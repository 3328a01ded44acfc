"""The model being served, and the hot swap to a new production version.

A poller watches ``registry/production.json``. When it names a new version, a complete new
:class:`LoadedModel` is built beside the old one (sha256 checked against the card, session
created, a probe batch answered with finite logits of the right shape) and only then is the
single reference replaced. Requests hold the object they started with, so the ones in flight
finish on the old session; nothing is ever served half-loaded. A version that fails any step
is refused: the old one keeps serving and the reason is logged and counted; the refused
version is tried again after a doubling back-off (a load can fail for a passing reason,
such as memory pressure). A server with nothing to serve (just started) whose production
version is refused, or whose alias file is corrupt, serves the registry's last good
version instead and says so in ``last_refusal``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
import numpy as np

from flywheel.core.errors import IntegrityError, RegistryError
from flywheel.core.service_sections import ServeConfig
from flywheel.release.predictor import Prediction, Predictor
from flywheel.release.registry import ModelCard, Registry
from flywheel.serving.decoders import FamilyDecoder
from flywheel.serving.telemetry import ServingMetrics

log = logging.getLogger("flywheel.serving")

_PROBE_ROWS = 2


@dataclass(frozen=True)
class LoadedModel:
    predictor: Predictor
    decoder: FamilyDecoder

    @property
    def card(self) -> ModelCard:
        return self.predictor.card

    @property
    def version(self) -> str:
        return self.predictor.version

    def predict(self, batch: np.ndarray) -> tuple[list[Prediction], float]:
        """Predictions for an encoded batch, and the seconds spent inside ONNX Runtime.

        :meth:`Predictor.predict_batch` in two timed steps, so the benchmark can tell the
        runtime's share of a request from the server's.
        """
        predictor = self.predictor
        start = time.perf_counter()
        logits = predictor.logits(batch)
        ort_seconds = time.perf_counter() - start
        outputs = predictor.family.postprocess(logits, predictor.spec)
        return [Prediction(fields) for fields in outputs], ort_seconds


class LoadRefusedError(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def load_model(registry: Registry, version: str, threads: int = 0) -> LoadedModel:
    """A verified, warmed model, or :class:`LoadRefusedError` with a short reason for metrics."""
    try:
        predictor = Predictor.from_registry(registry, version, threads=threads)
    except IntegrityError as err:
        raise LoadRefusedError("integrity", str(err)) from err
    except RegistryError as err:
        raise LoadRefusedError("registry", str(err)) from err
    except Exception as err:  # ONNX Runtime rejects a corrupt graph with its own exception types
        raise LoadRefusedError("load", f"{version}: cannot load model: {err}") from err
    card, family = predictor.card, predictor.family
    classifier = family.objective == "classification"
    if classifier and tuple(getattr(predictor.spec, "labels", ())) != tuple(card.labels):
        raise LoadRefusedError("spec", f"{version}: preprocessing labels differ from the card's")
    decoder = FamilyDecoder(family, predictor.spec)
    try:
        logits = predictor.logits(decoder.probe(_PROBE_ROWS))
    except Exception as err:
        raise LoadRefusedError("probe", f"{version}: probe batch failed: {err}") from err
    if logits.shape[0] != _PROBE_ROWS or (
        classifier and logits.shape != (_PROBE_ROWS, len(card.labels))
    ):
        raise LoadRefusedError(
            "probe",
            f"{version}: probe output has shape {list(logits.shape)}, which does not fit the card",
        )
    if not np.isfinite(logits).all():
        raise LoadRefusedError("probe", f"{version}: probe output is not finite")
    return LoadedModel(predictor, decoder)


class ModelHolder:
    def __init__(
        self,
        registry: Registry,
        metrics: ServingMetrics,
        threads: int = 0,
        retry_max_s: float = ServeConfig().reload_retry_max_s,
    ) -> None:
        self.registry = registry
        self.metrics = metrics
        self.threads = threads
        self.retry_max_s = retry_max_s
        self._current: LoadedModel | None = None
        self._check_lock = threading.Lock()
        self._seen_stat: tuple[int, int, int] | None = None
        self._seen_content: bytes | None = None
        self._wanted: str | None = None  # what the alias names (None: nothing, or corrupt)
        self._alias_corrupt = False
        # version -> (monotonic time of the next attempt, back-off that got it there)
        self._retry: dict[str, tuple[float, float]] = {}
        self._interval = 1.0
        self.last_refusal: str | None = None

    @property
    def current(self) -> LoadedModel | None:
        return self._current

    def _refuse(self, reason: str, message: str) -> None:
        self.last_refusal = message
        self.metrics.refused_loads.labels(reason=reason).inc()
        log.error(
            "refused model load (%s): %s; still serving %s",
            reason,
            message,
            self._current.version if self._current else "nothing",
        )

    def _read_alias(self) -> bytes | None:
        """The alias bytes when they changed since the last look, else None."""
        try:
            st = self.registry.alias_path.stat()
        except FileNotFoundError:
            return None
        stat = (st.st_mtime_ns, st.st_size, st.st_ino)
        if stat == self._seen_stat:
            return None
        content = self.registry.alias_path.read_bytes()
        self._seen_stat = stat
        if content == self._seen_content:
            return None
        self._seen_content = content
        return content

    def _parse_alias(self, content: bytes) -> None:
        try:
            alias: Any = json.loads(content)
            version = alias["version"] if isinstance(alias, dict) else None
        except (ValueError, KeyError):
            self._wanted, self._alias_corrupt = None, True
            self._refuse("alias", f"{self.registry.alias_path} is not a valid production alias")
            return
        self._alias_corrupt = False
        self._wanted = version if isinstance(version, str) and version else None

    def check(self) -> bool:
        """Look at the alias once; load and swap if it moved (or a refused version is due
        for another try). True when a new model went live.

        Blocking (it loads models): call it from a worker thread, never the event loop.
        """
        with self._check_lock:
            try:
                content = self._read_alias()
            except OSError as err:
                self._refuse("alias", f"cannot read {self.registry.alias_path}: {err}")
                return False
            if content is not None:
                self._parse_alias(content)
            wanted = self._wanted
            if wanted is None:
                return (
                    self._fall_back("the production alias is corrupt")
                    if self._alias_corrupt
                    else False
                )
            if self._current is not None and self._current.version == wanted:
                return False
            due = self._retry.get(wanted)
            if due is not None and time.monotonic() < due[0]:
                return False
            try:
                loaded = load_model(self.registry, wanted, self.threads)
            except LoadRefusedError as err:
                self._refuse(err.reason, str(err))
                self._schedule_retry(wanted, due)
                return self._fall_back(f"production {wanted} was refused ({err})", exclude=wanted)
            self._retry.pop(wanted, None)
            self.last_refusal = None
            return self._swap(loaded)

    def _schedule_retry(self, version: str, due: tuple[float, float] | None) -> None:
        delay = min(due[1] * 2, self.retry_max_s) if due else min(self._interval, self.retry_max_s)
        self._retry[version] = (time.monotonic() + delay, delay)
        log.info("will try %s again in %.0fs", version, delay)

    def _swap(self, loaded: LoadedModel) -> bool:
        previous = self._current
        self._current = loaded  # one reference store: requests see old or new, never a mix
        self.metrics.serving(loaded.version, loaded.card.variant)
        log.info("serving %s (was %s)", loaded.version, previous.version if previous else "nothing")
        return True

    def _fall_back(self, why: str, exclude: str | None = None) -> bool:
        """With nothing being served, serve the registry's last good version (by its own
        journal) rather than answer 503; say so in ``last_refusal``."""
        if self._current is not None:
            return False
        try:
            good = self.registry.last_good(exclude=(exclude,) if exclude else ())
            loaded = load_model(self.registry, good.version, self.threads) if good else None
        except (LoadRefusedError, RegistryError) as err:
            log.error("no last good version to fall back to: %s", err)
            return False
        if loaded is None:
            return False
        self._swap(loaded)
        self.last_refusal = f"{why}; serving the last good version {loaded.version} instead"
        log.warning("%s", self.last_refusal)
        return True

    async def check_async(self) -> bool:
        return await anyio.to_thread.run_sync(self.check)

    async def poll_forever(self, interval_s: float) -> None:
        self._interval = interval_s  # the first retry of a refused version waits one poll
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.check_async()
            except Exception:  # the poller must outlive any surprise; the old model keeps serving
                log.exception("model poll failed")
