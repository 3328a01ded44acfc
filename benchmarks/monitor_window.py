"""The monitor's cost: seconds for one comparison of a window of logged predictions with
the production model's reference profile, per family kind of input.

A scratch workspace gets a registered model (the test suite's tiny ONNX graphs with each
family's real spec), a reference profile of 1,000 rows and a prediction log of
``--window`` predictions in their stored form, half of them shifted; then
:func:`flywheel.monitor.report.run_monitor` (the monitor flow's one task, without Prefect)
is timed ``--repeats`` times. Writes ``benchmarks/results/monitor_window.json``.

    python -m benchmarks.monitor_window [--window 10000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _entry(task: str, rng: np.random.Generator, shift: float) -> dict[str, Any]:
    from flywheel.datasets.png import encode_png

    if task == "image_classification":
        pixels = np.clip(rng.normal(100 + 60 * shift, 30, (8, 8)), 0, 255).astype(np.uint8)
        return {"suffix": ".png", "b64": base64.b64encode(encode_png(pixels)).decode()}
    if task == "tabular_regression":
        return {"suffix": ".instance.json", "json": {"x": float(rng.normal(shift, 1))}}
    words = ["good", "bad", "day", "film", "plot"] + (["zzz"] * int(3 * shift))
    return {"suffix": ".instance.json", "json": " ".join(rng.choice(words, 8))}


def _prediction(task: str, rng: np.random.Generator) -> dict[str, Any]:
    if task == "tabular_regression":
        return {"value": float(rng.normal())}
    return {"label": str(rng.choice(["neg", "pos"]))}


def measure(task: str, window: int, repeats: int) -> dict[str, Any]:
    from tests.served_models import registry_with

    from flywheel.core.workspace import open_workspace
    from flywheel.monitor.prediction_log import PredictionLog
    from flywheel.monitor.reference import profile, reference_path
    from flywheel.monitor.report import run_monitor
    from flywheel.release.registry import Registry

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        raw, _ = registry_with(task, root)
        raw["paths"] = {"registry": "registry"}
        raw["monitor"] = {"window": window, "log_max_bytes": 1 << 30, "log_segment_bytes": 1 << 24}
        (root / "params.yaml").write_text(yaml.safe_dump(raw))
        ws = open_workspace(root / "params.yaml", root)
        entries = [_entry(task, rng, 0.0) for _ in range(1000)]
        document = profile(task, "v0001", entries, [_prediction(task, rng) for _ in entries])
        registry = Registry(ws.layout.registry)
        reference_path(registry.version_dir("v0001")).write_text(json.dumps(document))
        log = PredictionLog(ws.layout.prediction_log, ws.params.monitor)
        records = [
            {
                "kind": "prediction",
                "id": f"{i:032x}",
                "model_version": "v0001",
                "task": task,
                "instance": _entry(task, rng, 1.0 if i % 2 else 0.0),
                "prediction": _prediction(task, rng),
            }
            for i in range(window)
        ]
        log.append(records)
        seconds, report = [], {}
        for _ in range(repeats):
            start = time.perf_counter()
            report = run_monitor(ws)
            seconds.append(time.perf_counter() - start)
    return {
        "task": task,
        "window": report["window"],
        "seconds_median": round(statistics.median(seconds), 3),
        "seconds": [round(s, 3) for s in seconds],
        "drift_share": report["drift_share"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--window", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    tasks = ("image_classification", "text_classification", "tabular_regression")
    rows = [measure(task, args.window, args.repeats) for task in tasks]
    out = ROOT / "benchmarks" / "results" / "monitor_window.json"
    out.write_text(json.dumps({"window": args.window, "rows": rows}, indent=2) + "\n")
    print("| task | window | monitor seconds (median) | drift share (half shifted) |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['task']} | {r['window']} | {r['seconds_median']} | {r['drift_share']} |")


if __name__ == "__main__":
    main()
