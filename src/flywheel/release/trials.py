"""The gate applied down the evaluation's ranking: every candidate against production.

The evaluate stage ranks the deployable variants without knowing production (it is a
cached DVC stage). Here each candidate worth trying is measured together with production,
in one interleaved timing session on this run's test split, each through its own
preprocessing spec, and :func:`~flywheel.release.gate.decide` judges each; the first that
passes (and answers the probe) is the one to deploy. So whenever any candidate passes the
gate, the run deploys one, and the table says for every variant why it was or was not.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from flywheel.core.errors import GateRejected
from flywheel.core.workspace import Workspace
from flywheel.families import get_family
from flywheel.release.gate import GateResult, ModelMeasure, decide, enforce, probe

CHOSEN = "chosen: the best-ranked variant that passed the gate"
NOT_NEEDED = "passed the gate; a higher-ranked variant was chosen"


@dataclass(frozen=True)
class TestSet:
    instances: list[Any]
    y: np.ndarray

    @classmethod
    def of(cls, ws: Workspace) -> TestSet:
        family = get_family(ws.params.task)
        return cls(*family.raw_split(ws.params, ws.layout, "test"))


@dataclass(frozen=True)
class Trial:
    """One ranked variant's fate at the gate."""

    variant: str
    sha256: str
    verdict: str
    result: GateResult | None = None
    version: str | None = None  # the registry version already holding this model

    @property
    def passed(self) -> bool:
        return self.result is not None and self.result.passed

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["result"] = self.result.as_dict() if self.result else None
        return out


@dataclass(frozen=True)
class Model:
    """A model file and the preprocessing spec it expects."""

    path: Path
    spec: Path


def measure_together(
    ws: Workspace, models: dict[str, Model], test: TestSet
) -> dict[str, ModelMeasure]:
    """Score, batch-1 p50 and size of every model, timed in the same interleaved rounds
    (so a noisy moment of the machine lands on all of them), each model fed the test
    rows through its own preprocessing."""
    from flywheel.core.ort import available_providers
    from flywheel.measure.runners import onnx_runner, output_metrics, timing_plan
    from flywheel.measure.timing import summarise, time_interleaved

    family = get_family(ws.params.task)
    cfg, metric = ws.params.evaluate, ws.params.gate.metric
    providers = available_providers()
    runners, inputs = {}, {}
    for name, model in models.items():
        runners[name], _ = onnx_runner(model.path, cfg.intra_op_threads, providers)
        inputs[name] = family.encode(test.instances, family.load_spec(model.spec))
    samples = time_interleaved(runners, inputs, timing_plan(cfg))
    out = {}
    for name, run in runners.items():
        metrics = output_metrics(
            run, inputs[name], test.y, cfg.throughput_batch, metric != "accuracy"
        )
        timing = summarise(samples[name], cfg.throughput_batch)
        out[name] = ModelMeasure(
            metrics[metric], timing.latency_p50_ms, models[name].path.stat().st_size
        )
    return out


def judge(
    ws: Workspace,
    ranked: list[tuple[str, str, str | None]],
    reference: ModelMeasure | None,
    measures: dict[str, ModelMeasure],
    x_probe: np.ndarray,
) -> list[Trial]:
    """A trial per ``(variant, sha256, known version)``, in ranking order: every candidate
    is decided (so the table explains each); the first that passes the gate and the probe
    is marked the choice, the ones after it 'passed, not needed'."""
    cfg = ws.params.gate
    outputs = len(ws.params.labels) or 1
    trials: list[Trial] = []
    chosen = False
    for variant, sha, version in ranked:
        result = decide(measures[variant], reference, cfg)
        if not result.passed:
            trials.append(
                Trial(variant, sha, "refused: " + "; ".join(result.reasons), result, version)
            )
            continue
        if chosen:
            trials.append(Trial(variant, sha, NOT_NEEDED, result, version))
            continue
        try:
            probe(ws.layout.variant_file(variant), x_probe, outputs)
        except GateRejected as err:
            reason = f"refused: {err.result.reasons[0]}"
            trials.append(Trial(variant, sha, reason, err.result, version))
            continue
        chosen = True
        trials.append(Trial(variant, sha, CHOSEN, enforce(result), version))
    return trials
