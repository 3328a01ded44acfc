"""Gate the evaluated winner against production, register it and move the alias.

Everything between reading production and moving the alias happens under the registry
lock, so two promotions can never interleave, whatever started them. A model that fails
the gate, the probe or the post-promotion check never stays in production.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from flywheel.data.arrays import load_split
from flywheel.errors import FlywheelError
from flywheel.gate import GateResult, ModelMeasure, decide, enforce, probe
from flywheel.provenance import code_version
from flywheel.registry import ModelCard, Registry
from flywheel.registry.card import sha256_file
from flywheel.workspace import Workspace

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeployOutcome:
    status: Literal["deployed", "unchanged"]
    version: str
    reason: str
    card: ModelCard
    gate: GateResult | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "version": self.version,
            "reason": self.reason,
            "gate": self.gate.as_dict() if self.gate else None,
        }


def load_evaluation(ws: Workspace) -> dict[str, Any]:
    return dict(json.loads(ws.layout.evaluation_report.read_text()))


def _measure(
    path: Any, x: np.ndarray, y: np.ndarray, ws: Workspace, version: str | None
) -> ModelMeasure:
    from flywheel.evaluate import measure_variant
    from flywheel.ort_session import available_providers

    r = measure_variant(path, x, y, ws.params.evaluate, available_providers())
    return ModelMeasure(r.accuracy, r.latency_p50_ms, r.size_bytes, version)


def _compatible(card: ModelCard, ws: Workspace) -> bool:
    return card.task == ws.params.task and tuple(card.labels) == tuple(ws.params.labels)


def deploy(ws: Workspace, data_hash: str, run: dict[str, Any] | None = None) -> DeployOutcome:
    layout = ws.layout
    registry = Registry(layout.registry)
    report = load_evaluation(ws)
    winner = str(report["winner"])
    candidate_path = layout.variant_file(winner)
    candidate_sha = sha256_file(candidate_path)
    x_test, y_test = load_split(layout.split_file("test"))

    with registry.lock():
        production = registry.production()
        for card in registry.cards():
            if card.sha256 == candidate_sha:
                why = (
                    "already in production"
                    if production and card.version == production.version
                    else "already registered (and since rolled back); not redeploying it"
                )
                return DeployOutcome(
                    "unchanged", card.version, f"candidate {winner} is {card.version}, {why}", card
                )

        candidate = _measure(candidate_path, x_test, y_test, ws, None)
        reference = None
        if production is not None and _compatible(production, ws):
            reference = _measure(
                registry.model_path(registry.verify(production.version).version),
                x_test,
                y_test,
                ws,
                production.version,
            )
        result = enforce(decide(candidate, reference, ws.params.gate))
        probe(candidate_path, x_test[:8], len(ws.params.labels))

        recipe_path = layout.recipe_file(winner)
        recipe = (
            json.loads(recipe_path.read_text()) if recipe_path.is_file() else {"variant": winner}
        )
        variant = report["variants"][winner]
        card = registry.register(
            candidate_path,
            layout.preprocessing_spec,
            {
                "task": ws.params.task,
                "labels": ws.params.labels,
                "data_hash": data_hash,
                "params_hash": ws.params.fingerprint(),
                "code_version": code_version(ws.project),
                "variant": winner,
                "recipe": recipe,
                "metrics": {
                    "accuracy": float(variant["accuracy"]),
                    "latency_p50_ms": float(variant["latency_p50_ms"]),
                    "latency_p99_ms": float(variant["latency_p99_ms"]),
                    "throughput_per_s": float(variant["throughput_per_s"]),
                    "gate_accuracy": candidate.accuracy,
                },
                "params": ws.params.as_dict(),
                "evaluation": report,
                "run": run or {},
            },
        )
        registry.promote(card.version)
        try:
            _post_promotion_check(registry, x_test[:8], len(ws.params.labels))
        except FlywheelError as err:
            log.error("post-promotion check of %s failed (%s); rolling back", card.version, err)
            if production is not None:
                registry.rollback()
            raise
    return DeployOutcome(
        "deployed", card.version, f"promoted {winner} as {card.version}", card, result
    )


def _post_promotion_check(registry: Registry, batch: np.ndarray, num_outputs: int) -> None:
    """Load production exactly as the server will (via the alias, sha-verified) and probe it."""
    from flywheel.inference import Predictor

    try:
        predictor = Predictor.from_registry(registry)
        out = predictor.logits(batch)
    except Exception as err:
        raise FlywheelError(f"production model failed to load after promotion: {err}") from err
    if out.shape != (batch.shape[0], num_outputs) or not np.isfinite(out).all():
        raise FlywheelError(
            "production model gave non-finite or mis-shaped outputs after promotion"
        )


__all__ = ["DeployOutcome", "deploy", "load_evaluation"]
