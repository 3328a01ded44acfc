"""One promotion under the registry lock: finish what a kill cut short, judge the ranked
candidates against production, register and promote the chosen one, check it as the
server will load it, and leave no version stranded. :func:`flywheel.release.deploy.deploy`
drives it."""

from __future__ import annotations

import functools
import logging
from dataclasses import replace
from typing import Any

import numpy as np

from flywheel.core.errors import FlywheelError
from flywheel.core.faults import fault_point
from flywheel.core.workspace import Workspace
from flywheel.families import get_family
from flywheel.release.registry import ModelCard, Registry
from flywheel.release.registry.card import sha256_file
from flywheel.release.registry.journal import PENDING
from flywheel.release.trials import Model, TestSet, Trial, judge, measure_together

log = logging.getLogger(__name__)

_PRODUCTION = "production"


def _comparable(card: ModelCard, ws: Workspace) -> bool:
    """Production can be scored on this run's test set only if it solves the same task
    with the same classes in the same order."""
    return card.task == ws.params.task and tuple(card.labels) == tuple(ws.params.labels)


class Promotion:
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
        if not _comparable(production, self.ws):
            return production  # no rows of this run fit it; this run's candidate replaces it
        version = production.version
        log.warning("production %s was never checked after promotion: checking it now", version)
        try:
            self.post_check(version, self.probe_batch(registry.spec_path(version)))
        except FlywheelError as err:
            log.error("%s", err)  # retired; the run goes on against what is production now
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
        """The ranked candidates judged in order; none when production is one of them (the
        flywheel decided on exactly these candidates before: a rerun changes nothing),
        with the variant that is production."""
        layout, registry = self.ws.layout, self.registry
        live = production.version if production else None
        shas = {v: sha256_file(layout.variant_file(v)) for v in ranked}
        if production is not None:
            at_production = next((v for v in ranked if shas[v] == production.sha256), None)
            if at_production is not None:
                return [], at_production
        slots: list[Trial | tuple[str, str, str | None]] = []
        for variant in ranked:
            known = registry.find(shas[variant])
            if known is not None and registry.status(known.version, live) == "retired":
                why = registry.retired_reason(known.version)
                why = f"skipped: is {known.version}, retired ({why})"
                slots.append(Trial(variant, shas[variant], why, None, known.version))
            else:
                slots.append((variant, shas[variant], known.version if known else None))
        todo = [s for s in slots if isinstance(s, tuple)]
        judged = iter(self._judge(production, todo) if todo else [])
        return [s if isinstance(s, Trial) else next(judged) for s in slots], None

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
        from flywheel.monitor.reference import staged_reference, training_sample

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
                layout.variant_file(trial.variant),
                layout.preprocessing_spec,
                fields,
                extras=staged_reference(
                    functools.partial(
                        training_sample, self.ws, self.ws.params.monitor.reference_rows
                    )
                ),
            )
            fault_point("deploy.before_alias")
        else:
            card = registry.verify(trial.version)
            log.info("resuming %s: the registry holds this model already", card.version)
        # The journal keeps the gate's verdict beside the promotion: an audit can show
        # that every version that ever went live passed it.
        registry.promote(
            card.version,
            gate_passed=bool(trial.result and trial.result.passed),
            against=production.version if production else None,
            checks=[c.detail for c in trial.result.checks] if trial.result else [],
        )
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
