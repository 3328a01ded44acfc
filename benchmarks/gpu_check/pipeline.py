"""The default pipeline's train -> export -> compress -> evaluate, on whatever device the
train stage picks (the GPU with bf16-mixed where one works), in a throwaway workspace.

Validation is left out: it needs Great Expectations, which the GPU machine lacks, and the
digits dataset passes its suite by construction; the accepted manifest is the family's own
manifest of the folder, as the validate stage would write it.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import yaml

from benchmarks.common import PROJECT

QUICK = {
    "train": {"max_epochs": 3, "patience": 2},
    "compress": {"finetune_epochs": 1, "calibration_samples": 64, "prune_ratios": [0.5]},
    "evaluate": {"latency_runs": 30, "warmup_runs": 5, "throughput_runs": 5},
}
STAGES = ("preprocess", "train", "export", "compress", "evaluate")


def _params(quick: bool) -> Any:
    from flywheel.core.config import merge, parse_params

    raw = yaml.safe_load((PROJECT / "params.yaml").read_text())
    return parse_params(merge(raw, QUICK) if quick else copy.deepcopy(raw), "params.yaml")


def _accepted(params: Any, layout: Any) -> None:
    from flywheel.families import get_family

    family = get_family(params.task)
    manifest = family.manifest(params, layout.data).sort_values("path", kind="stable")
    layout.accepted_manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.loc[:, list(family.accepted_columns)].to_csv(
        layout.accepted_manifest, index=False, lineterminator="\n"
    )


def _metric_on(device: str, params: Any, layout: Any) -> float:
    """The trained network's gate metric on the test split, run by torch on ``device``."""
    import numpy as np
    import torch

    from flywheel.datasets.arrays import load_split
    from flywheel.families import get_family
    from flywheel.measure.metrics import compute_metrics
    from flywheel.nn.checkpoint import load_network

    spec = get_family(params.task).load_spec(layout.preprocessing_spec)
    net = load_network(layout.checkpoint, params, spec).to(device).eval()
    x, y = load_split(layout.split_file("test"))
    with torch.inference_mode():
        out = np.concatenate(
            [
                net(torch.from_numpy(x[i : i + 256]).to(device)).float().cpu().numpy()
                for i in range(0, len(x), 256)
            ]
        )
    return float(compute_metrics(out, y, params.is_regression)[params.gate.metric])


def _ort_metric(path: Path, providers: list[str], params: Any, layout: Any) -> float:
    from flywheel.datasets.arrays import load_split
    from flywheel.measure.runners import onnx_runner, output_metrics

    x, y = load_split(layout.split_file("test"))
    run, _ = onnx_runner(path, 0, providers)
    return float(output_metrics(run, x, y, 256, params.is_regression)[params.gate.metric])


def run_pipeline(root: Path, quick: bool, ort_cuda: bool) -> dict[str, Any]:
    import json

    from flywheel import stages
    from flywheel.core.layout import Layout
    from flywheel.core.ort import CPU, CUDA
    from flywheel.datasets.digits import materialise_digits

    params = _params(quick)
    layout = Layout.from_params(params, root)
    materialise_digits(layout.data)
    _accepted(params, layout)
    seconds: dict[str, float] = {}
    for name in STAGES:
        start = time.perf_counter()
        stages.run(name, params, layout)
        seconds[name] = round(time.perf_counter() - start, 2)
    train = json.loads(layout.train_metrics.read_text())
    evaluation = json.loads(layout.evaluation_report.read_text())
    winner = layout.variant_file(evaluation["winner"])
    metric = params.gate.metric
    out: dict[str, Any] = {
        "stage_seconds": seconds,
        "accelerator": train["accelerator"],
        "precision": train["precision"],
        "train_samples_per_s": train["samples_per_s"],
        "winner": evaluation["winner"],
        "variants": {v: r["score"] for v, r in evaluation["variants"].items()},
        "skipped_variants": evaluation["skipped"],
        f"network_{metric}_cpu": _metric_on("cpu", params, layout),
        f"deployed_{metric}_ort_cpu": _ort_metric(winner, [CPU], params, layout),
    }
    if train["accelerator"] == "gpu":
        out[f"network_{metric}_gpu"] = _metric_on("cuda", params, layout)
    if ort_cuda:
        out[f"deployed_{metric}_ort_cuda"] = _ort_metric(winner, [CUDA, CPU], params, layout)
    gpu_keys = [k for k in out if k.endswith(("_gpu", "_ort_cuda"))]
    out["max_gpu_vs_cpu_gap_points"] = max(
        (
            abs(out[k] - out[k.replace("_gpu", "_cpu").replace("_ort_cuda", "_ort_cpu")]) * 100
            for k in gpu_keys
        ),
        default=None,
    )
    return out
