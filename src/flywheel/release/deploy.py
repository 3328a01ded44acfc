"""Gate the evaluated winner against production, register it and move the alias.

Everything between reading production and moving the alias happens under the registry
lock, so two promotions can never interleave, whatever started them. A model that fails
the gate, the probe or the post-promotion check never stays in production.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from flywheel.core.errors import FlywheelError
from flywheel.core.provenance import code_version
from flywheel.core.workspace import Workspace
from flywheel.families import get_family
from flywheel.release.gate import GateResult, ModelMeasure, decide, enforce, probe
from flywheel.release.registry import ModelCard, Registry
from flywheel.release.registry.card import sha256_file

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


@dataclass(frozen=True)
class _TestSet:
    instances: list[Any]
    y: np.ndarray


def _measure(
    ws: Workspace, model: Path, spec: Path, test: _TestSet, version: str | None
) -> ModelMeasure:
    """Measure one model from raw test instances through its own preprocessing spec."""
    from flywheel.core.ort import available_providers
    from flywheel.measure.runners import measure_variant

    family = get_family(ws.params.task)
    x = family.encode(test.instances, family.load_spec(spec))
    metric = ws.params.gate.metric
    r = measure_variant(model, x, test.y, ws.params.evaluate, available_providers(), metric)
    return ModelMeasure(r.score, r.latency_p50_ms, r.size_bytes, version)


def _comparable(card: ModelCard, ws: Workspace) -> bool:
    """Production can be scored on this run's test set only if it solves the same task
    with the same classes in the same order."""
    return card.task == ws.params.task and tuple(card.labels) == tuple(ws.params.labels)


def _card_fields(
    ws: Workspace,
    data_hash: str,
    report: dict[str, Any],
    winner: str,
    gate_score: float,
    run: dict[str, Any] | None,
) -> dict[str, Any]:
    """What the card records beside the model: data, params, code, recipe, metrics."""
    recipe_path = ws.layout.recipe_file(winner)
    recipe = json.loads(recipe_path.read_text()) if recipe_path.is_file() else {"variant": winner}
    variant = report["variants"][winner]
    return {
        "task": ws.params.task,
        "labels": ws.params.labels,
        "data_hash": data_hash,
        "params_hash": ws.params.fingerprint(),
        "code_version": code_version(ws.project),
        "variant": winner,
        "recipe": recipe,
        "metrics": {
            **{k: float(v) for k, v in variant["metrics"].items()},
            "latency_p50_ms": float(variant["latency_p50_ms"]),
            "latency_p99_ms": float(variant["latency_p99_ms"]),
            "throughput_per_s": float(variant["throughput_per_s"]),
            f"gate_{ws.params.gate.metric}": gate_score,
        },
        "params": ws.params.as_dict(),
        "evaluation": report,
        "run": run or {},
    }


def _gate(
    ws: Workspace, registry: Registry, production: ModelCard | None, candidate_path: Path
) -> tuple[GateResult, np.ndarray]:
    """The candidate measured against production on this run's test split (raising
    :class:`GateRejected` when it fails) and the probe batch it answered."""
    layout = ws.layout
    family = get_family(ws.params.task)
    test = _TestSet(*family.raw_split(ws.params, layout, "test"))
    spec = family.load_spec(layout.preprocessing_spec)
    x_probe = family.encode(test.instances[: ws.params.gate.probe_rows], spec)
    candidate = _measure(ws, candidate_path, layout.preprocessing_spec, test, None)
    reference = None
    if production is not None and _comparable(production, ws):
        version = registry.verify(production.version).version
        reference = _measure(
            ws, registry.model_path(version), registry.spec_path(version), test, version
        )
    result = enforce(decide(candidate, reference, ws.params.gate))
    probe(candidate_path, x_probe, len(ws.params.labels) or 1)
    return result, x_probe


def deploy(ws: Workspace, data_hash: str, run: dict[str, Any] | None = None) -> DeployOutcome:
    layout = ws.layout
    registry = Registry(layout.registry)
    report = load_evaluation(ws)
    winner = str(report["winner"])
    candidate_path = layout.variant_file(winner)
    candidate_sha = sha256_file(candidate_path)

    with registry.lock():
        production = registry.production()
        known = registry.registered(candidate_sha)
        if known is not None:
            card, why = known
            return DeployOutcome(
                "unchanged", card.version, f"candidate {winner} is {card.version}, {why}", card
            )
        # Only a new model needs the test set: read it after the identity check.
        result, x_probe = _gate(ws, registry, production, candidate_path)
        fields = _card_fields(ws, data_hash, report, winner, result.candidate.score, run)
        card = registry.register(candidate_path, layout.preprocessing_spec, fields)
        registry.promote(card.version)
        try:
            _post_promotion_check(registry, x_probe, len(ws.params.labels) or 1)
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
    from flywheel.release.predictor import Predictor

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
