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
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from flywheel.core.errors import DataChangedError, FlywheelError, GateRejected
from flywheel.core.faults import fault_point
from flywheel.core.provenance import code_version
from flywheel.core.workspace import Workspace
from flywheel.families import get_family
from flywheel.release.gate import GateResult
from flywheel.release.registry import ModelCard, Registry
from flywheel.release.registry.card import sha256_file
from flywheel.release.registry.journal import PENDING
from flywheel.release.trials import CHOSEN, Model, TestSet, Trial, judge, measure_together

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeployOutcome:
    status: Literal["deployed", "unchanged", "refused"]
    version: str | None
    reason: str
    card: ModelCard | None
    gate: GateResult | None = None
    trials: tuple[Trial, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "version": self.version,
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


def load_evaluation(ws: Workspace) -> dict[str, Any]:
    return dict(json.loads(ws.layout.evaluation_report.read_text()))


def ranking(report: dict[str, Any]) -> list[str]:
    """The deployable candidates best first (reports before the ranking: the winner)."""
    return [str(v) for v in report.get("ranking") or [report["winner"]]]


def _comparable(card: ModelCard, ws: Workspace) -> bool:
    """Production can be scored on this run's test set only if it solves the same task
    with the same classes in the same order."""
    return card.task == ws.params.task and tuple(card.labels) == tuple(ws.params.labels)


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
        "run": run,
    }


class _Deploy:
    """One deploy under the registry lock: the test set read once, on first need."""

    def __init__(self, ws: Workspace, registry: Registry) -> None:
        self.ws, self.registry = ws, registry
        self._test: TestSet | None = None

    @property
    def test(self) -> TestSet:
        if self._test is None:
            self._test = TestSet.of(self.ws)
        return self._test

    def probe_batch(self, spec_path: Any) -> np.ndarray:
        family = get_family(self.ws.params.task)
        rows = self.test.instances[: self.ws.params.gate.probe_rows]
        return family.encode(rows, family.load_spec(spec_path))

    def checked_production(self) -> ModelCard | None:
        """Production, after finishing a post-promotion check a kill cut short."""
        registry = self.registry
        production = registry.production()
        if production is None or registry.verified(production.version):
            return production
        version = production.version
        log.warning("production %s was never checked after promotion: checking it now", version)
        self.post_check(version, self.probe_batch(registry.spec_path(version)))
        return registry.production()

    def post_check(self, version: str, batch: np.ndarray) -> None:
        """Load production exactly as the server will (via the alias, sha-verified) and
        probe it; on failure ``version`` is retired and production moves back."""
        try:
            _post_promotion_check(self.registry, batch, len(self.ws.params.labels) or 1)
        except FlywheelError as err:
            log.error("post-promotion check of %s failed (%s); retiring it", version, err)
            back = self.registry.retire(version, f"post-promotion check failed: {err}")
            raise FlywheelError(
                f"{version} failed its post-promotion check ({err}); production is "
                f"{back.version if back else 'none'} again"
            ) from err
        self.registry.mark_verified(version)

    def trials(
        self, production: ModelCard | None, ranked: list[str]
    ) -> tuple[list[Trial], str | None]:
        """Every candidate ranked above production (all of them when production is not
        among them), judged in ranking order; and the variant that is production, if any."""
        layout, registry = self.ws.layout, self.registry
        live = production.version if production else None
        slots: list[Trial | tuple[str, str, str | None]] = []
        at_production = None
        for variant in ranked:
            sha = sha256_file(layout.variant_file(variant))
            known = registry.find(sha)
            status = registry.status(known.version, live) if known else None
            if known is not None and status == "production":
                at_production = variant
                break
            if known is not None and status == "retired":
                why = registry.retired_reason(known.version)
                why = f"skipped: is {known.version}, retired ({why})"
                slots.append(Trial(variant, sha, why, None, known.version))
            else:
                slots.append((variant, sha, known.version if known else None))
        todo = [s for s in slots if isinstance(s, tuple)]
        judged = iter(self._judge(production, todo) if todo else [])
        return [s if isinstance(s, Trial) else next(judged) for s in slots], at_production

    def _judge(
        self, production: ModelCard | None, todo: list[tuple[str, str, str | None]]
    ) -> list[Trial]:
        layout, registry = self.ws.layout, self.registry
        models = {v: Model(layout.variant_file(v), layout.preprocessing_spec) for v, _, _ in todo}
        comparable = production is not None and _comparable(production, self.ws)
        if production is not None and comparable:
            version = registry.verify(production.version).version
            models[_PRODUCTION] = Model(registry.model_path(version), registry.spec_path(version))
        measures = measure_together(self.ws, models, self.test)
        reference = None
        if production is not None and comparable:
            reference = replace(measures.pop(_PRODUCTION), version=production.version)
        batch = self.probe_batch(layout.preprocessing_spec)
        return judge(self.ws, todo, reference, measures, batch)

    def promote(
        self, trial: Trial, fields: dict[str, Any], production: ModelCard | None
    ) -> ModelCard:
        """Register the chosen model (unless the registry holds it already: a promotion a
        kill interrupted, or an earlier production), promote it and check it."""
        registry, layout = self.registry, self.ws.layout
        if trial.version is None:
            # Written first: a kill from here to the alias move leaves a version the
            # journal knows was gated, which the next deploy resumes or retires.
            registry.journal.append(
                PENDING,
                registry.next_version(),
                sha256=trial.sha256,
                variant=trial.variant,
                against=production.version if production else None,
            )
            card = registry.register(
                layout.variant_file(trial.variant), layout.preprocessing_spec, fields
            )
            fault_point("deploy.before_alias")
        else:
            card = registry.verify(trial.version)
            log.info("resuming %s: the registry holds this model already", card.version)
        registry.promote(card.version)
        self.post_check(card.version, self.probe_batch(registry.spec_path(card.version)))
        return card

    def retire_stranded(self, keep: str | None) -> None:
        """No version stays registered-but-never-promoted once a later run has decided."""
        live = self.registry.production_version()
        for version in self.registry.versions():
            if version != keep and self.registry.status(version, live) == "stranded":
                self.registry.retire(
                    version, "superseded: its promotion was interrupted, and a later run decided"
                )


_PRODUCTION = "production"


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


def deploy(ws: Workspace, data_hash: str, run: dict[str, Any] | None = None) -> DeployOutcome:
    """Deploy the best-ranked candidate that passes the gate; raises :class:`DeployRefused`
    when none does (with every candidate's checks)."""
    registry = Registry(ws.layout.registry)
    report = load_evaluation(ws)
    with registry.lock():
        for line in registry.recover():
            log.warning("registry recovered: %s", line)
        job = _Deploy(ws, registry)
        production = job.checked_production()
        trials, at_production = job.trials(production, ranking(report))
        chosen = next((t for t in trials if t.verdict == CHOSEN), None)
        if chosen is None:
            job.retire_stranded(keep=None)
            if at_production is not None and production is not None:
                return _unchanged(production, at_production, trials)
            raise DeployRefused(tuple(trials), production.version if production else None)
        _pin(ws, data_hash)
        card = job.promote(
            chosen, _card_fields(ws, data_hash, report, chosen, run or {}), production
        )
        job.retire_stranded(keep=card.version)
    reason = f"promoted {chosen.variant} as {card.version}"
    return DeployOutcome("deployed", card.version, reason, card, chosen.result, tuple(trials))


def _unchanged(production: ModelCard, variant: str, trials: list[Trial]) -> DeployOutcome:
    reason = f"candidate {variant} is {production.version}, already in production"
    if trials:
        reason += f" ({len(trials)} higher-ranked variant(s) did not pass the gate)"
    return DeployOutcome("unchanged", production.version, reason, production, None, tuple(trials))


def _post_promotion_check(registry: Registry, batch: np.ndarray, num_outputs: int) -> None:
    """Load production exactly as the server will (via the alias, sha-verified) and probe it."""
    from flywheel.release.predictor import Predictor

    try:
        fault_point("deploy.post_check")
        predictor = Predictor.from_registry(registry)
        out = predictor.logits(batch)
    except Exception as err:
        raise FlywheelError(f"production model failed to load after promotion: {err}") from err
    if out.shape != (batch.shape[0], num_outputs) or not np.isfinite(out).all():
        raise FlywheelError(
            "production model gave non-finite or mis-shaped outputs after promotion"
        )


__all__ = ["DeployOutcome", "DeployRefused", "deploy", "load_evaluation", "ranking"]
