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
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
import torch
import torch_pruning as tp
from lightning import seed_everything

from flywheel.compress.fp16 import convert_fp16, fp16_unavailable_reason
from flywheel.compress.levels import sweep_levels
from flywheel.compress.prune import conv_channels, prune_network
from flywheel.compress.quantize import (
    calibration_sample,
    quantize_dynamic_int8,
    quantize_static_qdq,
)
from flywheel.compress.search import PRUNED_KINDS, not_applicable, pruned_name
from flywheel.compress.unstructured import sparsify
from flywheel.config import Params
from flywheel.data.arrays import load_split
from flywheel.errors import ConfigError
from flywheel.export import check_parity, export_family_network
from flywheel.families import get_family
from flywheel.layout import Layout
from flywheel.ort_session import available_providers
from flywheel.training import evaluate_network, fit_classifier, load_network

log = logging.getLogger(__name__)

STATIC = "quantize-static-qdq"
DYNAMIC = "quantize-dynamic"
# Rows timed per level in the graph-optimisation sweep.
_SWEEP_ROWS = 64


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _write_recipe(layout: Layout, variant: str, recipe: Mapping[str, Any]) -> dict[str, Any]:
    path = layout.variant_file(variant)
    full = {
        "variant": variant,
        "file": path.name,
        "size_bytes": path.stat().st_size,
        "sha256": _sha256(path),
        **recipe,
    }
    layout.recipe_file(variant).parent.mkdir(parents=True, exist_ok=True)
    layout.recipe_file(variant).write_text(json.dumps(full, indent=2) + "\n")
    return full


def _write_skipped(layout: Layout, variant: str, reason: str) -> dict[str, Any]:
    full = {"variant": variant, "skipped": reason}
    layout.recipe_file(variant).parent.mkdir(parents=True, exist_ok=True)
    layout.recipe_file(variant).write_text(json.dumps(full, indent=2) + "\n")
    return full


def _prune_and_finetune(
    params: Params, layout: Layout, spec: Any, ratio: float
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The network pruned at ``ratio`` and fine-tuned, and the recipe fields describing it."""
    seed_everything(params.seed, workers=True, verbose=False)
    net = load_network(layout.checkpoint, params, spec)
    train = load_split(layout.split_file("train"))
    val = load_split(layout.split_file("val"))
    example = get_family(params.task).example_input(spec)
    pruned, stats = prune_network(net, example, ratio)
    metric = params.gate.metric
    before = evaluate_network(pruned, params, *val)[metric]
    epochs = params.compress.finetune_epochs
    finetune: dict[str, Any] = {"epochs": epochs}
    if epochs > 0:
        # Lightning keeps modules in whatever mode they arrive in; an eval-mode network
        # would fine-tune with frozen BatchNorm statistics and no dropout.
        pruned.train()
        # Checkpoints of the fine-tune are scratch: only the exported variant is kept.
        with tempfile.TemporaryDirectory(prefix="flywheel-finetune-") as tmp:
            pruned, fit, _ = fit_classifier(
                pruned, params, train, val, max_epochs=epochs, checkpoint_dir=Path(tmp)
            )
        finetune.update(epochs_run=fit.epochs_run, seconds=fit.seconds)
    return pruned, {
        "prune": {
            **asdict(stats),
            "ratio_semantics": "fraction of output channels removed from every pruned layer",
            "macs_ratio": round(stats.macs_ratio, 4),
            "params_ratio": round(stats.params_ratio, 4),
            "conv_channels_before": conv_channels(net),
            "conv_channels_after": conv_channels(pruned),
            "method": "torch-pruning BasePruner, GroupMagnitudeImportance(p=2)",
            "torch_pruning_version": tp.__version__,
        },
        "finetune": finetune,
        f"val_{metric}_fp32": round(evaluate_network(net, params, *val)[metric], 6),
        f"val_{metric}_pruned_before_finetune": round(before, 6),
        f"val_{metric}_pruned": round(evaluate_network(pruned, params, *val)[metric], 6),
    }


def run_compress(params: Params, layout: Layout) -> dict[str, dict[str, Any]]:
    """Write every variant planned from ``params.compress`` but fp32 (export's), and all
    recipes; each recipe records the variant's fastest graph optimisation level."""
    cfg = params.compress
    fp32 = layout.variant_file("fp32")
    if not fp32.is_file():
        raise FileNotFoundError(f"{fp32} not found: run the export stage first")
    family = get_family(params.task)
    refused = not_applicable(cfg.variants, family.variants)
    if refused:
        raise ConfigError(
            f"compress.variants {refused} do not apply to {family.name}; "
            f"choose from {list(family.variants)}"
        )
    spec = family.load_spec(layout.preprocessing_spec)
    x_train, _ = load_split(layout.split_file("train"))
    calibration = calibration_sample(x_train, cfg.calibration_samples, params.seed)
    versions = {
        "seed": params.seed,
        "torch_version": torch.__version__,
        "onnxruntime_version": onnxruntime.__version__,
    }
    checkpoint = {
        "source": layout.checkpoint.name,
        "source_sha256": _sha256(layout.checkpoint),
        **versions,
    }
    source = {"source": fp32.name, "source_sha256": _sha256(fp32), **versions}
    # Recipes are written last, once each variant's optimisation levels are measured.
    fields: dict[str, dict[str, Any]] = {"fp32": {"steps": ["export"], **checkpoint}}
    skipped: dict[str, str] = {}

    if "int8" in cfg.variants:
        settings = quantize_static_qdq(
            fp32, layout.variant_file("int8"), calibration, per_channel=cfg.per_channel
        )
        fields["int8"] = {"steps": ["export", STATIC], **source, "quantization": settings}
    if "dynamic-int8" in cfg.variants:
        settings = quantize_dynamic_int8(
            fp32, layout.variant_file("dynamic-int8"), per_channel=cfg.per_channel
        )
        fields["dynamic-int8"] = {"steps": ["export", DYNAMIC], **source, "quantization": settings}
    if set(PRUNED_KINDS) & set(cfg.variants):
        for i, ratio in enumerate(cfg.ratios):
            fields.update(
                _pruned_variants(params, layout, spec, calibration, checkpoint, ratio, i == 0)
            )
    if "unstructured" in cfg.variants:
        fields["unstructured"] = _unstructured_variant(params, layout, spec, checkpoint)
    if "fp16" in cfg.variants:
        reason = fp16_unavailable_reason()
        if reason is None:
            settings = convert_fp16(fp32, layout.variant_file("fp16"))
            fields["fp16"] = {"steps": ["export", "float16"], **source, "conversion": settings}
        else:
            skipped["fp16"] = reason

    sweep_x = calibration[:_SWEEP_ROWS]
    providers = available_providers()
    recipes: dict[str, dict[str, Any]] = {}
    for name, recipe in fields.items():
        levels = sweep_levels(
            layout.variant_file(name),
            sweep_x,
            threads=params.evaluate.intra_op_threads,
            providers=providers,
        )
        recipes[name] = _write_recipe(layout, name, {**recipe, "ort_graph_optimization": levels})
        log.info(
            "compress: %s %d bytes, fastest ORT level %s",
            name,
            recipes[name]["size_bytes"],
            levels["fastest"],
        )
    for name, reason in skipped.items():
        recipes[name] = _write_skipped(layout, name, reason)
        log.info("compress: %s skipped: %s", name, reason)
    return recipes


def _unstructured_variant(
    params: Params, layout: Layout, spec: Any, source: Mapping[str, Any]
) -> dict[str, Any]:
    """Global magnitude sparsity at the first pruning ratio, without fine-tuning: a report row
    showing what zeroed weights do (and do not do) for speed."""
    net = load_network(layout.checkpoint, params, spec)
    sparse, stats = sparsify(net, params.compress.ratios[0])
    x_test, _ = load_split(layout.split_file("test"))
    val = load_split(layout.split_file("val"))
    path = layout.variant_file("unstructured")
    export_family_network(sparse, params, spec, path)
    parity = check_parity(sparse, path, x_test, params.evaluate.export_atol)
    metric = params.gate.metric
    return {
        "steps": ["sparsify", "export"],
        **source,
        "sparsity": stats,
        "deployable": False,
        f"val_{metric}_sparse": round(evaluate_network(sparse, params, *val)[metric], 6),
        "export_max_abs_diff": parity,
    }


def _pruned_variants(
    params: Params,
    layout: Layout,
    spec: Any,
    calibration: np.ndarray,
    source: Mapping[str, Any],
    ratio: float,
    primary: bool,
) -> dict[str, dict[str, Any]]:
    cfg = params.compress
    fp32_name = pruned_name("pruned-fp32", ratio, primary)
    int8_name = pruned_name("pruned-int8", ratio, primary)
    pruned, pruning = _prune_and_finetune(params, layout, spec, ratio)
    steps = ["prune", "finetune", "export"] if cfg.finetune_epochs > 0 else ["prune", "export"]
    x_test, _ = load_split(layout.split_file("test"))
    fields: dict[str, dict[str, Any]] = {}
    keep = "pruned-fp32" in cfg.variants
    # pruned-int8 alone still needs the pruned fp32 graph, just not as an artifact.
    with tempfile.TemporaryDirectory(prefix="flywheel-pruned-") as tmp:
        pruned_onnx = layout.variant_file(fp32_name) if keep else Path(tmp) / "pruned.onnx"
        export_family_network(pruned, params, spec, pruned_onnx)
        parity = check_parity(pruned, pruned_onnx, x_test, params.evaluate.export_atol)
        common = {**source, **pruning, "export_max_abs_diff": parity}
        if keep:
            fields[fp32_name] = {"steps": steps, **common}
        if "pruned-int8" in cfg.variants:
            settings = quantize_static_qdq(
                pruned_onnx,
                layout.variant_file(int8_name),
                calibration,
                per_channel=cfg.per_channel,
            )
            fields[int8_name] = {"steps": [*steps, STATIC], **common, "quantization": settings}
    return fields
