"""Compress stage: every configured variant of the exported model, each with its recipe.

A recipe is the JSON record of how a variant was made (steps, settings, costs, library
versions, the fastest ONNX Runtime graph optimisation level), written next to it so the
registry and the model card can say what they hold. A variant that cannot be built on this
machine (FP16 without a GPU) gets a recipe saying so and no model file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import onnxruntime
import torch

from flywheel.core.config import Params
from flywheel.core.errors import ConfigError
from flywheel.core.layout import Layout
from flywheel.core.ort import available_providers
from flywheel.datasets.arrays import load_split
from flywheel.families import get_family
from flywheel.stages.compress import builders
from flywheel.stages.compress.builders import BuildContext
from flywheel.stages.compress.fp16 import fp16_unavailable_reason
from flywheel.stages.compress.levels import sweep_levels
from flywheel.stages.compress.quantize import calibration_sample
from flywheel.stages.compress.variants import (
    KINDS,
    Planned,
    builder_name,
    not_applicable,
    planned_variants,
)

log = logging.getLogger(__name__)

# Rows timed per level in the graph-optimisation sweep.
_SWEEP_ROWS = 64
Builder = Callable[[BuildContext, Planned], dict[str, Any]]


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _write_json(path: Path, payload: Mapping[str, Any]) -> dict[str, Any]:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return dict(payload)


def _builder(kind: str) -> Builder:
    fn: Builder = getattr(builders, builder_name(kind))
    return fn


def _context(params: Params, layout: Layout, scratch: Path) -> BuildContext:
    family = get_family(params.task)
    refused = not_applicable(params.compress.variants, family.variants)
    if refused:
        raise ConfigError(
            f"compress.variants {refused} do not apply to {family.name}; "
            f"choose from {list(family.variants)}"
        )
    fp32 = layout.variant_file("fp32")
    if not fp32.is_file():
        raise FileNotFoundError(f"{fp32} not found: run the export stage first")
    x_train, _ = load_split(layout.split_file("train"))
    versions = {
        "seed": params.seed,
        "torch_version": torch.__version__,
        "onnxruntime_version": onnxruntime.__version__,
    }
    plan = planned_variants(params.compress.variants, params.compress.ratios)
    return BuildContext(
        params=params,
        layout=layout,
        family=family,
        spec=family.load_spec(layout.preprocessing_spec),
        calibration=calibration_sample(x_train, params.compress.calibration_samples, params.seed),
        checkpoint_source={
            "source": layout.checkpoint.name,
            "source_sha256": _sha256(layout.checkpoint),
            **versions,
        },
        fp32_source={"source": fp32.name, "source_sha256": _sha256(fp32), **versions},
        planned={p.name for p in plan},
        scratch=scratch,
    )


def _unavailable(kind: str) -> str | None:
    return fp16_unavailable_reason() if KINDS[kind].gpu_only else None


def run(params: Params, layout: Layout) -> dict[str, dict[str, Any]]:
    """Write every variant planned from ``params.compress`` but fp32 (export's), and all
    recipes; each recipe records the variant's fastest graph optimisation level."""
    recipes: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="flywheel-compress-") as tmp:
        ctx = _context(params, layout, Path(tmp))
        fields: dict[str, dict[str, Any]] = {}
        for planned in planned_variants(params.compress.variants, params.compress.ratios):
            reason = _unavailable(planned.kind)
            if reason is not None:
                recipes[planned.name] = _write_json(
                    layout.recipe_file(planned.name), {"variant": planned.name, "skipped": reason}
                )
                log.info("compress: %s skipped: %s", planned.name, reason)
                continue
            fields[planned.name] = _builder(planned.kind)(ctx, planned)
        # Recipes are written last, once each variant's optimisation levels are measured.
        for name, recipe in fields.items():
            recipes[name] = _finish_recipe(ctx, name, recipe)
    return recipes


def _finish_recipe(ctx: BuildContext, name: str, recipe: Mapping[str, Any]) -> dict[str, Any]:
    path = ctx.layout.variant_file(name)
    levels = sweep_levels(
        path,
        ctx.calibration[:_SWEEP_ROWS],
        threads=ctx.params.evaluate.intra_op_threads,
        providers=available_providers(),
        tolerance=ctx.params.evaluate.level_tolerance,
    )
    full = {
        "variant": name,
        "file": path.name,
        "size_bytes": path.stat().st_size,
        "sha256": _sha256(path),
        **recipe,
        "ort_graph_optimization": levels,
    }
    log.info(
        "compress: %s %d bytes, fastest ORT level %s", name, full["size_bytes"], levels["fastest"]
    )
    return _write_json(ctx.layout.recipe_file(name), full)
