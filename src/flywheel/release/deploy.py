"""Gate the evaluated candidates against production, register the chosen one, move the alias.

Everything between reading production and moving the alias happens under the registry
lock, so two promotions can never interleave, whatever started them. Every step that a
kill could cut short is recorded in the registry's journal before it happens, and the next
deploy finishes or undoes it first (:meth:`Registry.recover`): a version registered but
never promoted is resumed when the same model comes back (it is gated again) and retired
otherwise; a version promoted but never checked is checked; a model that fails the gate,
the probe or the post-promotion check never stays in production, first deploy included.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any, Literal

from flywheel.core.errors import DataChangedError, GateRejected
from flywheel.core.provenance import code_version
from flywheel.core.workspace import Workspace
from flywheel.feedback.provenance import feedback_counts
from flywheel.release.gate import GateResult
from flywheel.release.promotion import Promotion
from flywheel.release.registry import ModelCard, Registry, open_registry
from flywheel.release.trials import CHOSEN, Trial

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeployOutcome:
    status: Literal["deployed", "unchanged", "refused"]
    version: str | None
    reason: str
    card: ModelCard | None
    gate: GateResult | None = None
    trials: tuple[Trial, ...] = field(default=())
    variant: str | None = None  # the run's candidate that is production now

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "version": self.version,
            "variant": self.variant,
            "reason": self.reason,
            "gate": self.gate.as_dict() if self.gate else None,
            "trials": [t.as_dict() for t in self.trials],
        }


class DeployRefused(GateRejected):
    """No candidate of the run passed the gate; ``trials`` holds each one's checks and
    ``result`` the best-ranked one's, so a caller can show every check."""

    def __init__(self, trials: tuple[Trial, ...], production: str | None) -> None:
        self.trials = trials
        self.production = production
        first = next(t for t in trials if t.result is not None)
        super().__init__(first.result)

    @classmethod
    def possible(cls, trials: list[Trial]) -> bool:
        """Whether any candidate was judged (not all skipped as retired)."""
        return any(t.result is not None for t in trials)


def load_evaluation(ws: Workspace) -> dict[str, Any]:
    return dict(json.loads(ws.layout.evaluation_report.read_text()))


def ranking(report: dict[str, Any]) -> list[str]:
    """The deployable candidates best first (reports before the ranking: the winner)."""
    return [str(v) for v in report.get("ranking") or [report["winner"]]]


def _card_fields(
    ws: Workspace, data_hash: str, report: dict[str, Any], trial: Trial, run: dict[str, Any]
) -> dict[str, Any]:
    """What the card records beside the model: data, params, code, recipe, metrics."""
    winner = trial.variant
    recipe_path = ws.layout.recipe_file(winner)
    recipe = json.loads(recipe_path.read_text()) if recipe_path.is_file() else {"variant": winner}
    variant = report["variants"][winner]
    assert trial.result is not None
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
            f"gate_{ws.params.gate.metric}": trial.result.candidate.score,
        },
        "params": ws.params.as_dict(),
        "evaluation": report,
        "run": {**run, **feedback_counts(ws.layout)},
    }


def _pin(ws: Workspace, data_hash: str) -> None:
    """The data on disk is still the data this run validated and trained on."""
    from flywheel.datasets.hashing import data_hash as current_hash
    from flywheel.pipeline.names import short_hash

    now = current_hash(ws.layout.data)
    if now != data_hash:
        raise DataChangedError(
            f"{ws.layout.data} changed during the run (validated {short_hash(data_hash)}, now "
            f"{short_hash(now)}); nothing was deployed: run again (under `flywheel up` the "
            "watcher announces the new data)"
        )


def _claim(ws: Workspace, registry: Registry) -> None:
    from flywheel.pipeline.names import dataset_name
    from flywheel.release.registry.ownership import claim, claim_folder
    from flywheel.release.registry.remote import RemoteRegistry

    if isinstance(registry, RemoteRegistry):
        claim(registry.store, dataset_name(ws))
    claim_folder(registry.root, dataset_name(ws))


def deploy(ws: Workspace, data_hash: str, run: dict[str, Any] | None = None) -> DeployOutcome:
    """Deploy the best-ranked candidate that passes the gate; raises :class:`DeployRefused`
    when none does (with every candidate's checks)."""
    registry = open_registry(ws.layout.registry, ws.params.remote)
    report = load_evaluation(ws)
    _claim(ws, registry)
    with registry.lock():
        for line in registry.recover():
            log.warning("registry recovered: %s", line)
        job = Promotion(ws, registry)
        production = job.checked_production()
        trials, at_production = job.trials(production, ranking(report))
        chosen = next((t for t in trials if t.verdict == CHOSEN), None)
        if chosen is None:
            job.retire_stranded(keep=None)
            if at_production is not None and production is not None:
                return _unchanged(production, at_production, trials)
            if not DeployRefused.possible(trials):
                return _all_retired(production, trials)
            raise DeployRefused(tuple(trials), production.version if production else None)
        _pin(ws, data_hash)
        card = job.promote(
            chosen, _card_fields(ws, data_hash, report, chosen, run or {}), production
        )
        job.retire_stranded(keep=card.version)
        # Under the lock: the registry's sweep of temp files must not meet a half write.
        _reference(ws, registry, card.version)
    reason = f"promoted {chosen.variant} as {card.version}"
    return DeployOutcome(
        "deployed", card.version, reason, card, chosen.result, tuple(trials), chosen.variant
    )


def _reference(ws: Workspace, registry: Registry, version: str) -> None:
    """The reference profile of a version registered without one (before profiles were
    staged with the version, or a resumed promotion whose profile failed), in this
    machine's folder only; a failure here leaves the model unmonitored, never undeployed."""
    from flywheel.monitor.reference import load_reference, write_reference

    if load_reference(registry.version_dir(version)) is not None:
        return  # staged and published with the version (see promotion.promote)
    try:
        write_reference(ws, registry, version, ws.params.monitor.reference_rows)
    except Exception as err:
        log.warning("no reference profile for %s (it is not monitored): %s", version, err)


def _unchanged(production: ModelCard, variant: str, trials: list[Trial]) -> DeployOutcome:
    reason = f"candidate {variant} is {production.version}, already in production"
    return DeployOutcome(
        "unchanged", production.version, reason, production, None, tuple(trials), variant
    )


def _all_retired(production: ModelCard | None, trials: list[Trial]) -> DeployOutcome:
    """Every candidate is a model rolled back (or failed) before: not redeployed, and not
    a refusal either; production stays what it is."""
    names = ", ".join(f"{t.variant} ({t.version})" for t in trials)
    reason = f"every candidate was retired earlier and is not redeployed: {names}"
    version = production.version if production else None
    return DeployOutcome("unchanged", version, reason, production, None, tuple(trials))


__all__ = ["DeployOutcome", "DeployRefused", "deploy", "load_evaluation", "ranking"]
