"""Prometheus metrics for one app instance, and the ASGI middleware that counts every request.

Each app gets its own :class:`CollectorRegistry`: tests build several apps in one process and
the global default registry would refuse the second set of metric names.
"""

from __future__ import annotations

import time
from collections.abc import Collection

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class ServingMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "flywheel_http_requests",
            "HTTP requests answered.",
            ["route", "method", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "flywheel_http_request_duration_seconds",
            "Time from request start to the last response byte.",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "flywheel_batch_size",
            "Instances per ONNX Runtime call.",
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self.inference = Histogram(
            "flywheel_inference_seconds",
            "Time inside ONNX Runtime per batch.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.model_info = Gauge(
            "flywheel_model_info",
            "The model version being served (value 1).",
            ["version", "variant"],
            registry=r,
        )
        self.errors = Counter(
            "flywheel_errors", "Requests refused or failed, by kind.", ["kind"], registry=r
        )
        self.refused_loads = Counter(
            "flywheel_model_load_refused",
            "Production models that failed to load, verify or warm up, by reason.",
            ["reason"],
            registry=r,
        )
        self.swaps = Counter("flywheel_model_swaps", "Models put into service.", registry=r)
        self._loop_metrics(r)

    def _loop_metrics(self, r: CollectorRegistry) -> None:
        """Feedback, the prediction log and the monitor's verdict."""
        self.feedback = Counter(
            "flywheel_feedback_records",
            "Feedback records accepted into the inbox, by model version and how they named "
            "the instance (by_id: a logged prediction; by_instance: sent again).",
            ["model_version", "kind"],
            registry=r,
        )
        self.predictions_logged = Counter(
            "flywheel_predictions_logged",
            "Predictions written to the prediction log (monitor.sample_rate of them).",
            ["model_version"],
            registry=r,
        )
        # Set from the monitor flow's latest report whenever /metrics is read.
        self.drift_share = Gauge(
            "flywheel_drift_share_ratio",
            "Share of the model's input features (and its prediction distribution) that "
            "drifted from the reference profile in the monitor's latest window.",
            ["model_version"],
            registry=r,
        )
        self.live_accuracy = Gauge(
            "flywheel_live_accuracy_ratio",
            "Accuracy of logged predictions that received feedback (classifiers).",
            ["model_version"],
            registry=r,
        )
        self.live_error = Gauge(
            "flywheel_live_absolute_error_mean",
            "Mean absolute error of logged predictions that received feedback (regression).",
            ["model_version"],
            registry=r,
        )

    def monitor_report(self, report: dict[str, object]) -> None:
        """The gauges from a monitor report (see flywheel.monitor.report)."""
        version = str(report.get("model_version", ""))
        for gauge, key in (
            (self.drift_share, "drift_share"),
            (self.live_accuracy, "live_accuracy"),
            (self.live_error, "live_mae"),
        ):
            gauge.clear()
            value = report.get(key)
            if isinstance(value, int | float):
                gauge.labels(model_version=version).set(float(value))

    def serving(self, version: str, variant: str) -> None:
        # Exactly one series at a time, so `flywheel_model_info == 1` names the live version.
        self.model_info.clear()
        self.model_info.labels(version=version, variant=variant).set(1)
        self.swaps.inc()

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class MetricsMiddleware:
    """Counts status and latency per route template; unknown paths share one label so a
    scanner cannot blow up the series count."""

    def __init__(self, app: ASGIApp, metrics: ServingMetrics, known_paths: Collection[str]) -> None:
        self.app = app
        self.metrics = metrics
        self.known_paths = frozenset(known_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            path = scope.get("path", "")
            route = getattr(scope.get("route"), "path", None) or (
                path if path in self.known_paths else "other"
            )
            self.metrics.requests.labels(
                route=route, method=scope.get("method", ""), status=str(status)
            ).inc()
            self.metrics.latency.labels(route=route).observe(time.perf_counter() - start)
