"""How each variant kind is built: one function per kind in :data:`.variants.KINDS`.

A builder writes its variant's ONNX file and returns the recipe fields describing how it
was made; :mod:`.run` adds the file's size, hash and fastest ONNX Runtime level and writes
the recipe. Pruned kinds share one prune + fine-tune per ratio through the context.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch_pruning as tp
from lightning import seed_everything

from flywheel.core.config import Params
from flywheel.core.errors import ConfigError
from flywheel.core.layout import Layout
from flywheel.datasets.arrays import load_split
from flywheel.families.base import Family
from flywheel.nn.checkpoint import evaluate_network, load_network
from flywheel.nn.fit import fit_network
from flywheel.nn.onnx_export import check_parity, export_family_network
from flywheel.stages.compress.fp16 import convert_fp16
from flywheel.stages.compress.fusion import fuse_transformer, fusion_parity
from flywheel.stages.compress.prune import conv_channels, prune_network
from flywheel.stages.compress.quantize import quantize_dynamic_int8, quantize_static_qdq
from flywheel.stages.compress.unstructured import sparsify
from flywheel.stages.compress.variants import KINDS, Planned, pruned_name

STATIC = "quantize-static-qdq"
DYNAMIC = "quantize-dynamic"
FUSE = "fuse-transformer"
FUSED = "fused-fp32"


@dataclass
class BuildContext:
    """What every builder reads, and the pruned networks shared between pruned kinds."""

    params: Params
    layout: Layout
    family: Family
    spec: Any
    calibration: np.ndarray
    checkpoint_source: dict[str, Any]
    fp32_source: dict[str, Any]
    planned: set[str]
    scratch: Path
    _pruned: dict[float, tuple[torch.nn.Module, dict[str, Any]]] = field(default_factory=dict)
    _pruned_onnx: dict[float, tuple[Path, float]] = field(default_factory=dict)
    _fused: tuple[Path, dict[str, Any]] | None = None

    @property
    def fp32(self) -> Path:
        return self.layout.variant_file("fp32")

    def pruned(self, ratio: float) -> tuple[torch.nn.Module, dict[str, Any]]:
        if ratio not in self._pruned:
            self._pruned[ratio] = _prune_and_finetune(self, ratio)
        return self._pruned[ratio]

    def pruned_onnx(self, planned: Planned) -> tuple[Path, float]:
        """The pruned fp32 graph at ``planned.ratio`` and its export parity: the
        pruned-fp32 variant's own file when that is planned, a scratch file otherwise."""
        ratio = float(planned.ratio or 0.0)
        if ratio not in self._pruned_onnx:
            name = pruned_name("pruned-fp32", ratio, planned.name == planned.kind)
            keep = name in self.planned
            path = self.layout.variant_file(name) if keep else self.scratch / f"{name}.onnx"
            net, _ = self.pruned(ratio)
            export_family_network(net, self.params, self.spec, path)
            x_test, _ = load_split(self.layout.split_file("test"))
            parity = check_parity(net, path, x_test, self.params.evaluate.export_atol)
            self._pruned_onnx[ratio] = (path, parity)
        return self._pruned_onnx[ratio]

    def fused(self) -> tuple[Path, dict[str, Any]]:
        """The fp32 graph with its transformer blocks fused, and how: the fused-fp32
        variant's own file when that is planned, a scratch file otherwise."""
        if self._fused is None:
            keep = FUSED in self.planned
            path = self.layout.variant_file(FUSED) if keep else self.scratch / f"{FUSED}.onnx"
            self._fused = (path, _fuse(self, path))
        return self._fused


def _fuse(ctx: BuildContext, path: Path) -> dict[str, Any]:
    shape_of = getattr(ctx.spec, "encoder_shape", None)
    if shape_of is None:
        raise ConfigError(
            f"the fused-* variants need a transformer encoder's heads and hidden size, and "
            f"the {ctx.family.name} spec records none; drop them from compress.variants"
        )
    shape = shape_of()
    fusion = fuse_transformer(
        ctx.fp32, path, num_heads=shape.num_heads, hidden_size=shape.hidden_size
    )
    x_val, _ = load_split(ctx.layout.split_file("val"))
    atol = ctx.params.evaluate.export_atol
    fusion["max_abs_diff_vs_fp32"] = fusion_parity(ctx.fp32, path, x_val, atol)
    return fusion


def _finetune(ctx: BuildContext, pruned: torch.nn.Module) -> tuple[torch.nn.Module, dict]:
    epochs = ctx.params.compress.finetune_epochs
    record: dict[str, Any] = {"epochs": epochs}
    if epochs == 0:
        return pruned, record
    train = load_split(ctx.layout.split_file("train"))
    val = load_split(ctx.layout.split_file("val"))
    # Lightning keeps modules in whatever mode they arrive in; an eval-mode network
    # would fine-tune with frozen BatchNorm statistics and no dropout.
    pruned.train()
    # Checkpoints of the fine-tune are scratch: only the exported variant is kept.
    with tempfile.TemporaryDirectory(prefix="flywheel-finetune-") as tmp:
        pruned, fit, _ = fit_network(
            pruned, ctx.params, train, val, max_epochs=epochs, checkpoint_dir=Path(tmp)
        )
    record.update(epochs_run=fit.epochs_run, seconds=fit.seconds)
    return pruned, record


def _prune_and_finetune(ctx: BuildContext, ratio: float) -> tuple[torch.nn.Module, dict]:
    """The network pruned at ``ratio`` and fine-tuned, and the recipe fields describing it."""
    params = ctx.params
    seed_everything(params.seed, workers=True, verbose=False)
    net = load_network(ctx.layout.checkpoint, params, ctx.spec)
    val = load_split(ctx.layout.split_file("val"))
    pruned, stats = prune_network(net, ctx.family.example_input(ctx.spec), ratio)
    metric = params.gate.metric
    before = evaluate_network(pruned, params, *val)[metric]
    pruned, finetune = _finetune(ctx, pruned)
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


def _pruned_steps(ctx: BuildContext) -> list[str]:
    tuned = ctx.params.compress.finetune_epochs > 0
    return ["prune", "finetune", "export"] if tuned else ["prune", "export"]


def fp32(ctx: BuildContext, planned: Planned) -> dict[str, Any]:
    # Written by the export stage; compress only records where it came from.
    return {"steps": ["export"], **ctx.checkpoint_source}


def int8(ctx: BuildContext, planned: Planned) -> dict[str, Any]:
    settings = quantize_static_qdq(
        ctx.fp32,
        ctx.layout.variant_file(planned.name),
        ctx.calibration,
        per_channel=ctx.params.compress.per_channel,
    )
    return {"steps": ["export", STATIC], **ctx.fp32_source, "quantization": settings}


def dynamic_int8(ctx: BuildContext, planned: Planned) -> dict[str, Any]:
    settings = quantize_dynamic_int8(
        ctx.fp32, ctx.layout.variant_file(planned.name), per_channel=ctx.params.compress.per_channel
    )
    return {"steps": ["export", DYNAMIC], **ctx.fp32_source, "quantization": settings}


def pruned_fp32(ctx: BuildContext, planned: Planned) -> dict[str, Any]:
    _, pruning = ctx.pruned(float(planned.ratio or 0.0))
    _, parity = ctx.pruned_onnx(planned)
    return {
        "steps": _pruned_steps(ctx),
        **ctx.checkpoint_source,
        **pruning,
        "export_max_abs_diff": parity,
    }


def pruned_int8(ctx: BuildContext, planned: Planned) -> dict[str, Any]:
    _, pruning = ctx.pruned(float(planned.ratio or 0.0))
    source, parity = ctx.pruned_onnx(planned)
    settings = quantize_static_qdq(
        source,
        ctx.layout.variant_file(planned.name),
        ctx.calibration,
        per_channel=ctx.params.compress.per_channel,
    )
    return {
        "steps": [*_pruned_steps(ctx), STATIC],
        **ctx.checkpoint_source,
        **pruning,
        "export_max_abs_diff": parity,
        "quantization": settings,
    }


def unstructured(ctx: BuildContext, planned: Planned) -> dict[str, Any]:
    """Global magnitude sparsity at the first pruning ratio, without fine-tuning: a report row
    showing what zeroed weights do (and do not do) for speed."""
    params = ctx.params
    net = load_network(ctx.layout.checkpoint, params, ctx.spec)
    sparse, stats = sparsify(net, params.compress.ratios[0])
    x_test, _ = load_split(ctx.layout.split_file("test"))
    val = load_split(ctx.layout.split_file("val"))
    path = ctx.layout.variant_file(planned.name)
    export_family_network(sparse, params, ctx.spec, path)
    parity = check_parity(sparse, path, x_test, params.evaluate.export_atol)
    metric = params.gate.metric
    return {
        "steps": ["sparsify", "export"],
        **ctx.checkpoint_source,
        "sparsity": stats,
        "deployable": not KINDS[planned.kind].report_only,
        f"val_{metric}_sparse": round(evaluate_network(sparse, params, *val)[metric], 6),
        "export_max_abs_diff": parity,
    }


def fp16(ctx: BuildContext, planned: Planned) -> dict[str, Any]:
    settings = convert_fp16(ctx.fp32, ctx.layout.variant_file(planned.name))
    return {"steps": ["export", "float16"], **ctx.fp32_source, "conversion": settings}


def fused_fp32(ctx: BuildContext, planned: Planned) -> dict[str, Any]:
    _, fusion = ctx.fused()
    return {"steps": ["export", FUSE], **ctx.fp32_source, "fusion": fusion}


def fused_dynamic_int8(ctx: BuildContext, planned: Planned) -> dict[str, Any]:
    source, fusion = ctx.fused()
    settings = quantize_dynamic_int8(
        source, ctx.layout.variant_file(planned.name), per_channel=ctx.params.compress.per_channel
    )
    return {
        "steps": ["export", FUSE, DYNAMIC],
        **ctx.fp32_source,
        "fusion": fusion,
        "quantization": settings,
    }


def fused_int8(ctx: BuildContext, planned: Planned) -> dict[str, Any]:
    source, fusion = ctx.fused()
    settings = quantize_static_qdq(
        source,
        ctx.layout.variant_file(planned.name),
        ctx.calibration,
        per_channel=ctx.params.compress.per_channel,
    )
    return {
        "steps": ["export", FUSE, STATIC],
        **ctx.fp32_source,
        "fusion": fusion,
        "quantization": settings,
    }


def fused_fp16(ctx: BuildContext, planned: Planned) -> dict[str, Any]:
    source, fusion = ctx.fused()
    settings = convert_fp16(source, ctx.layout.variant_file(planned.name))
    return {
        "steps": ["export", FUSE, "float16"],
        **ctx.fp32_source,
        "fusion": fusion,
        "conversion": settings,
    }
