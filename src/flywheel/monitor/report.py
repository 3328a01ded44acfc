"""One monitor pass: the prediction log's latest window against the production model's
reference profile, and live accuracy from feedback that named a logged prediction.

The report (a JSON document) is what the monitor flow publishes and what the server's
``/metrics`` exports; it is written whole to ``layout.monitor_report``.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from flywheel.core.workspace import Workspace
from flywheel.monitor.drift import compare, drift_share
from flywheel.monitor.features import instance_features, prediction_features
from flywheel.monitor.prediction_log import LogReader, PredictionLog, now_iso
from flywheel.monitor.reference import load_reference

if TYPE_CHECKING:
    from flywheel.release.registry import Registry


def live_quality(feedback: list[dict[str, Any]]) -> dict[str, Any]:
    """Accuracy (classes) or mean absolute error (values) of predictions that got feedback."""
    hits, errors = [], []
    for record in feedback:
        predicted = record.get("prediction") or {}
        if "label" in predicted:
            hits.append(str(predicted["label"]) == str(record.get("label")))
        elif "value" in predicted and isinstance(record.get("label"), int | float):
            errors.append(abs(float(predicted["value"]) - float(record["label"])))
    return {
        "feedback_in_window": len(feedback),
        "live_accuracy": sum(hits) / len(hits) if hits else None,
        "live_mae": sum(errors) / len(errors) if errors else None,
    }


def prediction_log(ws: Workspace) -> LogReader:
    """This machine's prediction log; with a team remote, every replica's (shipped there)."""
    if not ws.params.remote.enabled:
        return PredictionLog(ws.layout.prediction_log, ws.params.monitor)
    from flywheel.monitor.shared_log import SharedPredictionLog
    from flywheel.remote.objects import ObjectStore

    return SharedPredictionLog(
        ObjectStore(ws.params.remote),
        ws.layout.shared_prediction_log,
        max_bytes=ws.params.monitor.log_max_bytes,
    )


def _window(ws: Workspace, version: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    predictions, feedback = prediction_log(ws).recent(ws.params.monitor.window)
    return [p for p in predictions if p.get("model_version") == version], feedback


def _production(ws: Workspace) -> tuple[Registry, str | None]:
    """The production version, and the registry folder holding its reference profile.

    Alone, this machine's registry. With a team remote, the remote alias (the monitor
    reads every replica's log, so it judges the team's production), its version fetched
    into this machine's mirror and sha-checked like a replica's download."""
    from flywheel.release.registry import open_registry
    from flywheel.release.registry.remote import RemoteRegistry

    registry = open_registry(ws.layout.registry, ws.params.remote)
    version = registry.production_version()
    if version and isinstance(registry, RemoteRegistry):
        registry.fetch_version(version)
    return registry, version


def run_monitor(ws: Workspace) -> dict[str, Any]:
    """Compare, write the report, and return it (``drifted`` says whether to alert)."""
    from flywheel.core.atomic import atomic_write_bytes
    from flywheel.pipeline.names import dataset_name

    start = time.perf_counter()
    cfg = ws.params.monitor
    registry, version = _production(ws)
    report: dict[str, Any] = {
        "dataset": dataset_name(ws),
        "model_version": version,
        "checked_at": now_iso(),
        "threshold": cfg.threshold,
        "drifted": False,
        "drift_share": None,
        "features": [],
    }
    reference = load_reference(registry.version_dir(version)) if version else None
    predictions, feedback = _window(ws, version) if version else ([], [])
    report |= {"window": len(predictions), **live_quality(feedback)}
    if reference is None:
        report["verdict"] = "no reference profile for the production model"
    elif len(predictions) < cfg.min_window:
        report["verdict"] = f"{len(predictions)} logged predictions, fewer than monitor.min_window"
    else:
        vocabulary = set(reference.get("vocabulary") or []) or None
        columns = instance_features(
            reference["task"], (p["instance"] for p in predictions), vocabulary
        )
        prediction_features(columns, (p.get("prediction") or {} for p in predictions))
        results = compare(reference, columns, cfg.p_value)
        share = drift_share(results)
        report |= {
            "features": [r.as_row() for r in results],
            "drift_share": share,
            "drifted_features": [r.feature for r in results if r.drifted],
            "drifted": share >= cfg.threshold,
            "verdict": "drift" if share >= cfg.threshold else "no drift",
        }
    report["seconds"] = round(time.perf_counter() - start, 3)
    atomic_write_bytes(ws.layout.monitor_report, (json.dumps(report, indent=2) + "\n").encode())
    return report
