"""The model being served, and the hot swap to a new production version.

A poller watches ``registry/production.json``. When it names a new version, a complete new
:class:`LoadedModel` is built beside the old one (sha256 checked against the card, session
created, a probe batch answered with finite logits of the right shape) and only then is the
single reference replaced. Requests hold the object they started with, so the ones in flight
finish on the old session; nothing is ever served half-loaded. A version that fails any step
is refused: the old one keeps serving and the reason is logged and counted.
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
    def __init__(self, registry: Registry, metrics: ServingMetrics, threads: int = 0) -> None:
        self.registry = registry
        self.metrics = metrics
        self.threads = threads
        self._current: LoadedModel | None = None
        self._check_lock = threading.Lock()
        self._seen_stat: tuple[int, int, int] | None = None
        self._seen_content: bytes | None = None
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

    def check(self) -> bool:
        """Look at the alias once; load and swap if it moved. True when a new model went live.

        Blocking (it loads models): call it from a worker thread, never the event loop.
        A refused version is not retried until the alias changes again, so a broken model
        is counted once, not once per poll.
        """
        with self._check_lock:
            try:
                content = self._read_alias()
            except OSError as err:
                self._refuse("alias", f"cannot read {self.registry.alias_path}: {err}")
                return False
            if content is None:
                return False
            try:
                alias: Any = json.loads(content)
                version = alias["version"] if isinstance(alias, dict) else None
            except (ValueError, KeyError):
                self._refuse("alias", f"{self.registry.alias_path} is not a valid production alias")
                return False
            if not isinstance(version, str) or not version:
                return False
            if self._current is not None and self._current.version == version:
                return False
            try:
                loaded = load_model(self.registry, version, self.threads)
            except LoadRefusedError as err:
                self._refuse(err.reason, str(err))
                return False
            previous = self._current
            self._current = loaded  # one reference store: requests see old or new, never a mix
            self.last_refusal = None
            self.metrics.serving(loaded.version, loaded.card.variant)
            log.info(
                "serving %s (was %s)", loaded.version, previous.version if previous else "nothing"
            )
            return True

    async def check_async(self) -> bool:
        return await anyio.to_thread.run_sync(self.check)

    async def poll_forever(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.check_async()
            except Exception:  # the poller must outlive any surprise; the old model keeps serving
                log.exception("model poll failed")
