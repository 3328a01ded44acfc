"""Hugging Face Optimum as the peer of Flywheel's deployed sentiment model, side by side.

Optimum cannot share the project's environment (optimum-onnx pins transformers<4.58, the
project runs 5.x), so it lives in a virtual environment of its own, made on demand from the
pinned ``peers/optimum-requirements.txt`` under ``benchmarks/.venvs/optimum`` (git-ignored;
``--venv`` names another one, whose pins are checked). The benchmark:

1. brings the sentiment example's workspace up to date through DVC (cached when current);
2. writes the workspace's fine-tuned MiniLM encoder in Hugging Face format (the very
   weights Flywheel deployed; the mean-pooling classifier head stays here);
3. runs ``peers/optimum_worker.py`` in the Optimum environment as a subprocess: export,
   ``ORTOptimizer`` O3, ``ORTQuantizer`` with the dynamic preset that fits this CPU
   (:func:`choose_preset`, recorded with its reason);
4. in this one process, with the same intra-op thread count, times eager PyTorch, Flywheel's
   ONNX fp32 and deployed variant, and every Optimum file in interleaved rounds (batch 1
   and 64), and scores each on the same test split. Optimum's graph outputs the encoder's
   hidden states; the same masked mean pooling and head turn them into logits in numpy.

    python -m benchmarks.optimum_peer [--quick] [--venv PATH]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from benchmarks import targets
from benchmarks.common import PROJECT, ratio, skip, write_result
from benchmarks.optimum_env import VENV, WORK, ensure_venv, run_worker, write_hf_model
from benchmarks.optimum_measure import measure

ENTRY = "sentiment"


def choose_preset(flags: Mapping[str, bool]) -> tuple[str, str]:
    """Optimum's dynamic quantization preset for a CPU with these ISA flags, and why."""
    if flags.get("avx512_vnni") or flags.get("avx_vnni"):
        return "avx512_vnni", "the CPU has VNNI: INT8 dot products in one instruction"
    if flags.get("avx512f") and flags.get("avx512bw"):
        return "avx512", "the CPU has AVX-512 (F, BW) but no VNNI"
    return "avx2", "the CPU has no AVX-512 and no VNNI: the AVX2 preset is the one that fits"


def best_peer(models: Mapping[str, Mapping[str, Any]], ours: float, points: float,
              key: str, lower: bool) -> str | None:  # fmt: skip
    """The Optimum model best on ``key`` among those at most ``points`` less accurate than
    ``ours`` (a more accurate peer competes too); None when none is."""
    fair = [n for n, m in models.items() if m["side"] == "optimum" and m["score"] >= ours - points]
    if not fair:
        return None
    pick = min if lower else max
    return pick(fair, key=lambda n: float(models[n][key]))


def peer_targets(r: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets: deployed vs eager, and no slower than Optimum's best at equal
    accuracy at batch 1 and batch 64, with the accuracy gap that "equal" allows."""
    m, deployed = r["models"], r["deployed"]
    ours = m[deployed]
    points = targets.PEER_ACCURACY_POINTS
    b1 = best_peer(m, ours["score"], points, "latency_p50_ms", lower=True)
    b64 = best_peer(m, ours["score"], points, "throughput_per_s", lower=False)
    checks = [
        targets.check(
            "sentiment: deployed p50 vs eager fp32 (CPU, batch 1)",
            ratio(ours["latency_p50_ms"], m["torch-eager"]["latency_p50_ms"]),
            targets.LATENCY_VS_EAGER["sentiment"],
        ),
        targets.check(
            f"sentiment: deployed p50 vs Optimum's best at equal accuracy ({b1}, batch 1)",
            ratio(ours["latency_p50_ms"], m[b1]["latency_p50_ms"]) if b1 else None,
            targets.PEER_LATENCY_RATIO,
        ),
        targets.check(
            f"sentiment: deployed batch-64 time vs Optimum's best at equal accuracy ({b64})",
            ratio(m[b64]["throughput_per_s"], ours["throughput_per_s"]) if b64 else None,
            targets.PEER_LATENCY_RATIO,
        ),
    ]
    gap = None if b1 is None else round(abs(ours["score"] - m[b1]["score"]), 6)
    checks.append(
        targets.check(f"sentiment: |accuracy deployed - {b1}| (equal accuracy)", gap, points)
    )
    if all("cpu_latency_p50_ms" in v for v in m.values()):
        cpu = best_peer(m, ours["score"], points, "cpu_latency_p50_ms", lower=True)
        checks.append(
            targets.check(
                f"sentiment: cross-check, on-CPU p50 vs Optimum's best ({cpu}, batch 1)",
                ratio(ours["cpu_latency_p50_ms"], m[cpu]["cpu_latency_p50_ms"]) if cpu else None,
                targets.PEER_LATENCY_RATIO,
            )
        )
    return checks


def run(quick: bool, venv: Path) -> dict[str, Any]:
    from benchmarks.inference_families import Entry, bring_up_to_date, unavailable
    from benchmarks.machine import cpu_info
    from flywheel.families import get_family
    from flywheel.nn.checkpoint import load_network

    entry = Entry(ENTRY, PROJECT / "examples" / ENTRY / "params.yaml")
    reason = unavailable(entry)
    if reason:
        return {"skipped": [skip("Optimum peer", reason)]}
    flags = cpu_info()["flags"]
    preset, why = choose_preset(flags)
    python, env = ensure_venv(venv)
    ws, stages = bring_up_to_date(entry)
    spec = get_family(ws.params.task).load_spec(ws.layout.preprocessing_spec)
    net = load_network(ws.layout.checkpoint, ws.params, spec)
    hf = write_hf_model(net, WORK / "hf-model")
    manifest = run_worker(python, hf, WORK / "onnx", preset)
    result = measure(ws, manifest, WORK / "onnx", quick)
    result.update(
        stages=stages,
        venv=env,
        preset={"name": preset, "reason": why, "cpu_flags": flags},
        optimum=manifest,
        hf_model="the workspace's fine-tuned encoder (BertModel.save_pretrained) + tokenizer",
        skipped=[],
    )
    result["targets"] = peer_targets(result)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short timings, for a smoke run")
    parser.add_argument("--venv", type=Path, default=VENV,
                        help=f"the Optimum environment (default {VENV.relative_to(PROJECT)}, "
                        "made on demand; another one is checked against the pins)")  # fmt: skip
    args = parser.parse_args(argv)
    started = time.perf_counter()
    body = {"quick": args.quick, **run(args.quick, args.venv.resolve())}
    path = write_result("optimum_peer", body, started)
    for check in body.get("targets", []):
        print(f"  {check['target']}: {check['measured']} (goal {check['goal']}) met={check['met']}")
    print(f"written {path.relative_to(PROJECT)}")


if __name__ == "__main__":
    main()
