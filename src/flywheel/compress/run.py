"""Compress stage: every configured variant of the exported model, each with its recipe.

A recipe is the JSON record of how a variant was made (steps, settings, costs, library
versions), written next to it so the registry and the model card can say what they hold.
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

from flywheel.compress.prune import conv_channels, prune_network
from flywheel.compress.quantize import (
    calibration_sample,
    quantize_dynamic_int8,
    quantize_static_qdq,
)
from flywheel.config import Params
from flywheel.data.arrays import load_split
from flywheel.errors import ConfigError
from flywheel.export import check_parity, export_family_network
from flywheel.families import get_family
from flywheel.layout import Layout
from flywheel.training import evaluate_network, fit_classifier, load_network

log = logging.getLogger(__name__)

STATIC = "quantize-static-qdq"
DYNAMIC = "quantize-dynamic"


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


def _prune_and_finetune(
    params: Params, layout: Layout, spec: Any
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The pruned, fine-tuned network and the recipe fields describing it."""
    seed_everything(params.seed, workers=True, verbose=False)
    net = load_network(layout.checkpoint, params, spec)
    train = load_split(layout.split_file("train"))
    val = load_split(layout.split_file("val"))
    example = get_family(params.task).example_input(spec)
    pruned, stats = prune_network(net, example, params.compress.prune_ratio)
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
    """Write every variant in ``params.compress.variants`` but fp32 (export's), and all recipes."""
    cfg = params.compress
    fp32 = layout.variant_file("fp32")
    if not fp32.is_file():
        raise FileNotFoundError(f"{fp32} not found: run the export stage first")
    family = get_family(params.task)
    not_applicable = sorted(set(cfg.variants) - set(family.variants))
    if not_applicable:
        raise ConfigError(
            f"compress.variants {not_applicable} do not apply to {family.name}; "
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
    recipes = {"fp32": _write_recipe(layout, "fp32", {"steps": ["export"], **checkpoint})}

    if "int8" in cfg.variants:
        settings = quantize_static_qdq(
            fp32, layout.variant_file("int8"), calibration, per_channel=cfg.per_channel
        )
        recipes["int8"] = _write_recipe(
            layout, "int8", {"steps": ["export", STATIC], **source, "quantization": settings}
        )
    if "dynamic-int8" in cfg.variants:
        settings = quantize_dynamic_int8(
            fp32, layout.variant_file("dynamic-int8"), per_channel=cfg.per_channel
        )
        recipes["dynamic-int8"] = _write_recipe(
            layout,
            "dynamic-int8",
            {"steps": ["export", DYNAMIC], **source, "quantization": settings},
        )
    if {"pruned-fp32", "pruned-int8"} & set(cfg.variants):
        recipes.update(_pruned_variants(params, layout, spec, calibration, checkpoint))
    for name, recipe in recipes.items():
        log.info("compress: %s %d bytes", name, recipe["size_bytes"])
    return recipes


def _pruned_variants(
    params: Params,
    layout: Layout,
    spec: Any,
    calibration: np.ndarray,
    source: Mapping[str, Any],
) -> dict[str, dict[str, Any]]:
    cfg = params.compress
    pruned, pruning = _prune_and_finetune(params, layout, spec)
    steps = ["prune", "finetune", "export"] if cfg.finetune_epochs > 0 else ["prune", "export"]
    x_test, _ = load_split(layout.split_file("test"))
    recipes: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="flywheel-pruned-") as tmp:
        # pruned-int8 alone still needs the pruned fp32 graph, just not as an artifact.
        keep = "pruned-fp32" in cfg.variants
        pruned_onnx = layout.variant_file("pruned-fp32") if keep else Path(tmp) / "pruned.onnx"
        export_family_network(pruned, params, spec, pruned_onnx)
        parity = check_parity(pruned, pruned_onnx, x_test, params.evaluate.export_atol)
        common = {**source, **pruning, "export_max_abs_diff": parity}
        if keep:
            recipes["pruned-fp32"] = _write_recipe(
                layout, "pruned-fp32", {"steps": steps, **common}
            )
        if "pruned-int8" in cfg.variants:
            settings = quantize_static_qdq(
                pruned_onnx,
                layout.variant_file("pruned-int8"),
                calibration,
                per_channel=cfg.per_channel,
            )
            recipes["pruned-int8"] = _write_recipe(
                layout,
                "pruned-int8",
                {"steps": [*steps, STATIC], **common, "quantization": settings},
            )
    return recipes
