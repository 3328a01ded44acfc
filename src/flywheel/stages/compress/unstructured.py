"""Unstructured (per-weight) magnitude sparsity: the compression that usually does not pay.

Zeroing the smallest weights leaves every tensor its shape, so dense CPU and GPU kernels do
exactly the same work; the file only shrinks once compressed. The compress stage builds this
variant so the report can show that with a measurement, flagged as no speed-up, instead of
leaving it to belief. It is never a deployment candidate.
"""

from __future__ import annotations

import copy
from typing import Any

from torch import nn
from torch.nn.utils import prune

_WEIGHTED = (nn.Conv1d, nn.Conv2d, nn.Linear)


def sparsify(net: nn.Module, sparsity: float) -> tuple[nn.Module, dict[str, Any]]:
    """A copy of ``net`` with the ``sparsity`` share of its conv/linear weights set to zero,
    the smallest by magnitude across all layers (global L1); ``net`` is left untouched."""
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must lie in [0, 1), got {sparsity}")
    sparse = copy.deepcopy(net).cpu().eval()
    targets = [(m, "weight") for m in sparse.modules() if isinstance(m, _WEIGHTED)]
    if not targets:
        raise ValueError("cannot sparsify: the network has no convolution or linear layer")
    if sparsity > 0.0:
        prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=sparsity)
        for module, name in targets:
            prune.remove(module, name)  # bake the mask in: plain tensors, plain export
    total = sum(int(m.weight.numel()) for m, _ in targets)
    zeros = sum(int((m.weight == 0).sum()) for m, _ in targets)
    return sparse, {
        "sparsity": sparsity,
        "zero_share": round(zeros / max(total, 1), 6),
        "weights": total,
        "layers": len(targets),
        "method": "global L1 magnitude over conv/linear weights (torch.nn.utils.prune)",
    }
