"""``python -m benchmarks.gpu_check --out DIR [--quick]``: see the package docstring."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import PROJECT
from benchmarks.gpu_check import env
from benchmarks.gpu_check.report import markdown


def _part(results: dict[str, Any], name: str, fn: Callable[[], Any]) -> None:
    """Run one part; a failure is recorded with its traceback and the next part still runs."""
    start = time.perf_counter()
    try:
        results[name] = fn()
    except Exception as err:
        results[name] = {"error": f"{type(err).__name__}: {err}", "trace": traceback.format_exc()}
    print(f"gpu_check: {name} done in {time.perf_counter() - start:.1f}s", flush=True)


def _pytest_gpu() -> dict[str, Any]:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-m",
            "gpu",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/unit/nn/test_gpu.py",
        ],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return {"returncode": proc.returncode, "tail": proc.stdout[-3000:] + proc.stderr[-2000:]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for a CPU smoke run")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    _part(results, "machine", env.describe)
    no_gpu = env.cuda_reason()
    no_ort_cuda = env.ort_cuda_reason()
    results["skipped"] = {}
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        root = Path(tmp)
        _part(results, "pipeline", lambda: _pipeline(root, args.quick, no_ort_cuda is None))
        if no_gpu is None:
            _gpu_parts(results, root, args.quick, no_ort_cuda)
        else:
            for name in ("training", "inference", "share_of_peak", "pytest_gpu"):
                results["skipped"][name] = no_gpu
    if no_ort_cuda is not None:
        results["skipped"]["ort_cuda"] = no_ort_cuda
    (args.out / "gpu_check.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    (args.out / "gpu_check.md").write_text(markdown(results))
    print((args.out / "gpu_check.md").read_text())
    failed = [k for k, v in results.items() if isinstance(v, dict) and "error" in v]
    return 1 if failed else 0


def _pipeline(root: Path, quick: bool, ort_cuda: bool) -> dict[str, Any]:
    from benchmarks.gpu_check.pipeline import run_pipeline

    return run_pipeline(root, quick, ort_cuda)


def _gpu_parts(results: dict[str, Any], root: Path, quick: bool, no_ort: str | None) -> None:
    from benchmarks.gpu_check import inference, pipeline, training
    from flywheel.core.layout import Layout

    params = pipeline._params(quick)
    layout = Layout.from_params(params, root)
    repeats = 50 if quick else 500
    _part(results, "training", lambda: training.run_training(quick))
    _part(
        results,
        "inference",
        lambda: inference.variants_on_gpu(layout, params, no_ort is None, repeats),
    )
    peak = results["machine"].get("ceilings", {}).get("bf16_matmul_flops", 790e12)
    _part(results, "share_of_peak", lambda: inference.share_of_peak(peak))
    _part(results, "pytest_gpu", _pytest_gpu)


if __name__ == "__main__":
    sys.exit(main())
