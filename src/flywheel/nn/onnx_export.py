"""A network as one self-contained ONNX file, and its parity with PyTorch.

The TorchScript exporter (``dynamo=False``) is used on purpose: torch 2.13 defaults to the
dynamo exporter, which needs ``onnxscript`` (not a dependency) and may write weights as
external data next to the graph. For plain Conv/BN/Linear networks the TorchScript path is
mature, folds BatchNorm into the convolutions and writes a single file. Every family's graph
has one input named ``input`` (batch first) and one output named ``logits``.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from torch import nn

from flywheel.core.config import Params
from flywheel.core.errors import ExportMismatchError
from flywheel.core.ort import CPU, INPUT_NAME, OUTPUT_NAME, make_session
from flywheel.families import get_family

DEFAULT_OPSET = 17
_PARITY_BATCH = 256


def export_onnx(
    net: nn.Module,
    example: torch.Tensor | tuple[int, ...],
    path: Path,
    opset: int = DEFAULT_OPSET,
    dynamic_axes: dict[int, str] | None = None,
) -> Path:
    """Write ``net`` to ``path`` with a dynamic batch axis (plus ``dynamic_axes`` of the input).

    ``example`` is an input batch, or a float input shape without the batch axis."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A copy, so exporting never flips the caller's module between train and eval.
    model = copy.deepcopy(net).cpu().eval()
    if not isinstance(example, torch.Tensor):
        example = torch.zeros((1, *example), dtype=torch.float32)
    input_axes = {0: "batch", **(dynamic_axes or {})}
    tmp = path.with_suffix(".onnx.tmp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "legacy exporter": chosen on purpose
        torch.onnx.export(
            model,
            (example,),
            str(tmp),
            dynamo=False,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: input_axes, OUTPUT_NAME: {0: "batch"}},
            opset_version=opset,
        )
    onnx.checker.check_model(str(tmp), full_check=True)
    tmp.replace(path)
    return path


def compare(net: nn.Module, onnx_path: Path, x: np.ndarray) -> tuple[float, float]:
    """(max |onnx - torch| output difference, argmax agreement) over all of ``x``; the
    agreement is 1.0 for single-output (regression) models, where argmax means nothing."""
    # CPU always: parity is a property of the graph, not of whichever GPU happens to be here.
    session = make_session(onnx_path, providers=[CPU])
    net = copy.deepcopy(net).cpu().eval()
    max_diff, agree = 0.0, 0
    with torch.inference_mode():
        for i in range(0, len(x), _PARITY_BATCH):
            batch = np.ascontiguousarray(x[i : i + _PARITY_BATCH])
            expected = net(torch.from_numpy(batch)).float().numpy()
            got = session.run([OUTPUT_NAME], {INPUT_NAME: batch})[0]
            max_diff = max(max_diff, float(np.max(np.abs(got - expected))))
            agree += int((got.argmax(axis=1) == expected.argmax(axis=1)).sum())
    return max_diff, agree / max(len(x), 1)


def check_parity(net: nn.Module, onnx_path: Path, x: np.ndarray, atol: float) -> float:
    """Largest |ONNX Runtime - PyTorch| logit difference over ``x``; raises beyond ``atol``."""
    max_diff, _ = compare(net, onnx_path, x)
    if max_diff > atol:
        raise ExportMismatchError(max_diff, atol)
    return max_diff


def export_family_network(net: nn.Module, params: Params, spec: Any, path: Path) -> Path:
    family = get_family(params.task)
    return export_onnx(
        net, family.example_input(spec), path, dynamic_axes=family.dynamic_input_axes
    )
