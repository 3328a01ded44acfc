"""Export stage: the trained network as one ONNX file, checked against PyTorch on the
test split; the parity report stays on disk as evidence even when the check fails."""

from __future__ import annotations

import json
import logging

from flywheel.core.config import Params
from flywheel.core.errors import ExportMismatchError
from flywheel.core.layout import Layout
from flywheel.core.ort import INPUT_NAME, OUTPUT_NAME
from flywheel.datasets.arrays import load_split
from flywheel.families import get_family
from flywheel.nn.checkpoint import load_network
from flywheel.nn.onnx_export import DEFAULT_OPSET, compare, export_family_network

log = logging.getLogger(__name__)


def run(params: Params, layout: Layout) -> dict[str, object]:
    spec = get_family(params.task).load_spec(layout.preprocessing_spec)
    net = load_network(layout.checkpoint, params, spec)
    x, _ = load_split(layout.split_file("test"))
    path = export_family_network(net, params, spec, layout.variant_file("fp32"))
    max_diff, agreement = compare(net, path, x)
    atol = params.evaluate.export_atol
    report: dict[str, object] = {
        "path": path.name,
        "opset": DEFAULT_OPSET,
        "exporter": "torchscript",
        "input_name": INPUT_NAME,
        "output_name": OUTPUT_NAME,
        "input_shape": ["batch", *x.shape[1:]],
        "input_dtype": str(x.dtype),
        "samples": len(x),
        "max_abs_diff": max_diff,
        "atol": atol,
        "argmax_agreement": agreement,
        "size_bytes": path.stat().st_size,
    }
    layout.export_report.parent.mkdir(parents=True, exist_ok=True)
    layout.export_report.write_text(json.dumps(report, indent=2) + "\n")
    if max_diff > atol:
        # The report stays on disk as the evidence; the model file does not.
        path.unlink(missing_ok=True)
        raise ExportMismatchError(max_diff, atol)
    log.info("exported %s: max |diff| %.2e over %d samples", path, max_diff, len(x))
    return report
