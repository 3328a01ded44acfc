"""Every compression variant kind, declared once: what it is and how it counts.

``compress.variants`` in params names kinds from :data:`KINDS` (config validates against
it); the compress stage builds each planned variant with the function of
:mod:`.builders` named after its kind (``pruned-int8`` -> ``pruned_int8``, a test checks
each has one); evaluate reads which kinds are report-only and which unpruned variant a
pruned one is compared with. A new kind is one entry here plus its builder. Pure data:
importing this module loads nothing but the standard library (config imports it).

The plan expands kinds into concrete variants: one pruned variant per ratio in
``compress.prune_ratios`` (the first keeps the plain name, the others carry their ratio,
``pruned-int8@0.75``).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

REFERENCE = "fp32"


@dataclass(frozen=True)
class VariantKind:
    name: str
    summary: str
    # Measured and shown, never deployed (zeroed weights in dense tensors are the same work).
    report_only: bool = False
    # Built only where ONNX Runtime's CUDA provider works (FP16 kernels are a GPU feature).
    gpu_only: bool = False
    # Applies to any network, whatever the family lists in ``Family.variants``.
    universal: bool = False
    # One variant per ``compress.prune_ratios`` entry.
    per_ratio: bool = False
    # For pruned kinds: the unpruned kind of the same precision, which it must beat.
    unpruned: str | None = None


KINDS: dict[str, VariantKind] = {
    k.name: k
    for k in (
        VariantKind("fp32", "the exported graph: the reference", universal=True),
        VariantKind("int8", "static QDQ INT8, calibrated on training rows"),
        VariantKind("dynamic-int8", "INT8 weights, activation ranges computed per call"),
        VariantKind(
            "pruned-fp32",
            "structured channel pruning + fine-tune",
            per_ratio=True,
            unpruned="fp32",
        ),
        VariantKind("pruned-int8", "pruned, then static QDQ INT8", per_ratio=True, unpruned="int8"),
        VariantKind(
            "unstructured",
            "global magnitude sparsity (report only)",
            report_only=True,
            universal=True,
        ),
        VariantKind(
            "fp16", "float16 weights and activations (GPU only)", gpu_only=True, universal=True
        ),
        # Transformer encoders only: the family's spec names the heads and hidden size.
        VariantKind(
            "fused-fp32",
            "ONNX Runtime's transformer optimizer: attention, skip-layer-norm, GELU fused",
        ),
        VariantKind("fused-dynamic-int8", "fused graph, then dynamic INT8 (QAttention)"),
        VariantKind("fused-int8", "fused graph, then static QDQ INT8 calibrated on training rows"),
        VariantKind("fused-fp16", "fused graph in float16 (GPU only)", gpu_only=True),
    )
}


@dataclass(frozen=True)
class Planned:
    name: str
    kind: str
    ratio: float | None = None  # structured pruning ratio, for per-ratio kinds


def pruned_name(kind: str, ratio: float, primary: bool) -> str:
    return kind if primary else f"{kind}@{ratio:g}"


def kind_of(name: str) -> str:
    return name.split("@", 1)[0]


def planned_variants(kinds: Sequence[str], ratios: Sequence[float]) -> list[Planned]:
    """Every concrete variant for ``kinds`` (in their order) at every pruning ratio."""
    if not ratios:
        raise ValueError("at least one pruning ratio is needed")
    plan: list[Planned] = []
    for kind in dict.fromkeys(kinds):
        if KINDS[kind].per_ratio:
            plan += [Planned(pruned_name(kind, r, i == 0), kind, r) for i, r in enumerate(ratios)]
        else:
            plan.append(Planned(kind, kind))
    return plan


def not_applicable(kinds: Collection[str], family_variants: Collection[str]) -> list[str]:
    universal = {k.name for k in KINDS.values() if k.universal}
    return sorted(set(kinds) - set(family_variants) - universal)


def unknown_kinds(kinds: Collection[str]) -> list[str]:
    return sorted(set(kinds) - set(KINDS))


def builder_name(kind: str) -> str:
    """The function of :mod:`flywheel.stages.compress.builders` that builds ``kind``."""
    return KINDS[kind].name.replace("-", "_")


def is_report_only(name: str) -> bool:
    return KINDS[kind_of(name)].report_only


def unpruned_of(name: str) -> str | None:
    return KINDS[kind_of(name)].unpruned
