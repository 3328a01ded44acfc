"""Optimum's side of the peer benchmark; runs inside the Optimum virtual environment only.

Reads a Hugging Face model folder (the fine-tuned MiniLM encoder, written by
``benchmarks/optimum_peer.py``), and writes, each as Optimum's own tooling makes it:

- ``plain/model.onnx``: ``optimum.exporters.onnx.main_export`` (task feature-extraction);
- ``o3/model_optimized.onnx``: ``ORTOptimizer`` at O3, the highest CPU level (O4 adds fp16
  and is for GPUs);
- ``o3-<preset>/...quantized.onnx``: ``ORTQuantizer`` with the dynamic preset given, as the
  preset defines it (per-channel weights), and ``o3-<preset>-per-tensor/``: the same preset
  with per-tensor weights, since either may be Optimum's faster on a given CPU;

then ``manifest.json`` naming every file, the settings and the library versions. Nothing
here imports flywheel: the project is not installed in this environment. Offline: the model
folder holds everything (``HF_HUB_OFFLINE=1``).

    python optimum_worker.py --model DIR --out DIR --preset avx2
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from collections import Counter
from importlib import metadata
from pathlib import Path
from typing import Any

VERSIONS = ("optimum", "optimum-onnx", "onnxruntime", "transformers", "torch", "onnx")


def _ops(path: Path) -> dict[str, int]:
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return dict(Counter(n.op_type for n in graph.node).most_common())


def export(model: Path, out: Path) -> Path:
    from optimum.exporters.onnx import main_export

    main_export(str(model), str(out), task="feature-extraction", local_files_only=True)
    return out / "model.onnx"


def optimize(plain_dir: Path, out: Path) -> Path:
    from optimum.onnxruntime import ORTOptimizer
    from optimum.onnxruntime.configuration import AutoOptimizationConfig

    optimizer = ORTOptimizer.from_pretrained(str(plain_dir))
    optimizer.optimize(save_dir=str(out), optimization_config=AutoOptimizationConfig.O3())
    return out / "model_optimized.onnx"


def with_shapes(o3_dir: Path, out: Path) -> Path:
    """A copy of the O3 folder whose graph carries inferred shapes: ORT's quantizer cannot
    type the outputs of the fused contrib operators without them."""
    import onnx
    from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

    shutil.copytree(o3_dir, out, dirs_exist_ok=True)
    path = out / "model_optimized.onnx"
    model = SymbolicShapeInference.infer_shapes(onnx.load(str(path)), auto_merge=True)
    onnx.save(model, str(path))
    return out


def quantize(src_dir: Path, out: Path, preset: str, per_channel: bool) -> tuple[Path, dict]:
    from optimum.onnxruntime import ORTQuantizer
    from optimum.onnxruntime.configuration import AutoQuantizationConfig

    config = getattr(AutoQuantizationConfig, preset)(is_static=False, per_channel=per_channel)
    quantizer = ORTQuantizer.from_pretrained(str(src_dir), file_name="model_optimized.onnx")
    quantizer.quantize(save_dir=str(out), quantization_config=config)
    settings = {
        "preset": preset,
        "is_static": config.is_static,
        "per_channel": config.per_channel,
        "reduce_range": config.reduce_range,
        "weights_dtype": config.weights_dtype.name,
        "activations_dtype": config.activations_dtype.name,
        "operators_to_quantize": list(config.operators_to_quantize),
    }
    return out / "model_optimized_quantized.onnx", settings


def build(model: Path, out: Path, preset: str) -> dict[str, Any]:
    steps: dict[str, Any] = {}

    def record(name: str, path: Path, t0: float, **extra: Any) -> None:
        steps[name] = {
            "file": str(path.relative_to(out)),
            "seconds": round(time.perf_counter() - t0, 1),
            "ops": _ops(path),
            **extra,
        }

    t0 = time.perf_counter()
    record("plain", export(model, out / "plain"), t0, how="main_export, feature-extraction")
    t0 = time.perf_counter()
    record("o3", optimize(out / "plain", out / "o3"), t0, how="ORTOptimizer, O3")
    shaped = with_shapes(out / "o3", out / "o3-shapes")
    for per_channel, suffix in ((True, ""), (False, "-per-tensor")):
        t0 = time.perf_counter()
        path, settings = quantize(shaped, out / f"o3-{preset}{suffix}", preset, per_channel)
        record(f"o3-{preset}{suffix}", path, t0, how="ORTQuantizer, dynamic", settings=settings)
    return steps


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--preset", required=True, choices=("avx2", "avx512", "avx512_vnni"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    steps = build(args.model, args.out, args.preset)
    manifest = {
        "preset": args.preset,
        "models": steps,
        "versions": {name: metadata.version(name) for name in VERSIONS},
    }
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(json.dumps({k: v["file"] for k, v in steps.items()}))


if __name__ == "__main__":
    main()
