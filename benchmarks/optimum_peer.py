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
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import targets
from benchmarks.common import HERE, PROJECT, ratio, skip, write_result

ENTRY = "sentiment"
REQUIREMENTS = HERE / "peers" / "optimum-requirements.txt"
WORKER = HERE / "peers" / "optimum_worker.py"
VENV = HERE / ".venvs" / "optimum"
WORK = HERE / ".peers" / "optimum"
STAMP = ".flywheel-requirements.sha256"
# The modules the Optimum environment must import; the first install is alone (torch).
FIRST = ("torch",)
OUTPUT = "last_hidden_state"
Head = list[tuple[np.ndarray, np.ndarray]]

# --- pure parts ---------------------------------------------------------------------------


def parse_pins(text: str) -> dict[str, str]:
    """``name==version`` lines of a requirements file (comments and blanks skipped); names
    normalised as pip does (case, ``_`` and ``.`` as ``-``)."""
    pins: dict[str, str] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        if not sep or not version.strip():
            raise ValueError(f"requirement {line!r} is not pinned as name==version")
        pins[_normal(name)] = version.strip()
    return pins


def _normal(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(".", "-")


def first_installs(pins: Mapping[str, str]) -> list[str]:
    """What pip installs before the rest: torch alone, so that the resolver never pulls a
    CUDA build for a requirement that merely names torch."""
    return [f"{name}=={pins[name]}" for name in FIRST if name in pins]


def pin_mismatches(pins: Mapping[str, str], freeze: str) -> list[str]:
    """The pins a ``pip freeze`` output does not satisfy; a local label (``+cpu``) is ignored."""
    installed = {}
    for line in freeze.splitlines():
        name, sep, version = line.partition("==")
        if sep:
            installed[_normal(name)] = version.split("+", 1)[0].strip()
    return [
        f"{name}=={want} (found {installed.get(name, 'nothing')})"
        for name, want in pins.items()
        if installed.get(name) != want
    ]


def choose_preset(flags: Mapping[str, bool]) -> tuple[str, str]:
    """Optimum's dynamic quantization preset for a CPU with these ISA flags, and why."""
    if flags.get("avx512_vnni") or flags.get("avx_vnni"):
        return "avx512_vnni", "the CPU has VNNI: INT8 dot products in one instruction"
    if flags.get("avx512f") and flags.get("avx512bw"):
        return "avx512", "the CPU has AVX-512 (F, BW) but no VNNI"
    return "avx2", "the CPU has no AVX-512 and no VNNI: the AVX2 preset is the one that fits"


def mean_pool_head(states: np.ndarray, mask: np.ndarray, head: Head) -> np.ndarray:
    """What :class:`flywheel.families.sentiment.network.MeanPooledClassifier` does after the
    encoder: masked mean over tokens, then the head's linear layers with ReLU between."""
    weights = mask.astype(states.dtype)
    # einsum, not matmul: no BLAS thread pool next to the one-thread ORT session.
    pooled = np.einsum("bt,bth->bh", weights, states)
    pooled /= np.maximum(weights.sum(axis=1, keepdims=True), 1.0)
    out = pooled
    for i, (w, b) in enumerate(head):
        out = out @ w.T + b
        if i < len(head) - 1:
            out = np.maximum(out, 0.0)
    return np.asarray(out, dtype=np.float32)


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


# --- the Optimum environment --------------------------------------------------------------


def _run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, text=True, capture_output=True, check=False, **kwargs)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr)[-3000:]
        raise RuntimeError(f"{' '.join(cmd[:4])} ... exited {proc.returncode}: {tail}")
    return proc


def ensure_venv(
    venv: Path, requirements: Path = REQUIREMENTS, managed: Path = VENV
) -> tuple[Path, dict[str, Any]]:
    """A peer environment's interpreter (Optimum's by default), made (or remade, when the pins
    changed) from ``requirements`` when it is the ``managed`` one; an environment found with
    other versions is refused."""
    text = requirements.read_text()
    pins = parse_pins(text)
    digest = hashlib.sha256(text.encode()).hexdigest()
    python = venv / "bin" / "python"
    t0 = time.perf_counter()
    created = False
    stamp = venv / STAMP
    if venv == managed and (not stamp.is_file() or stamp.read_text().strip() != digest):
        shutil.rmtree(venv, ignore_errors=True)
        _run([sys.executable, "-m", "venv", str(venv)])
        pip = [str(python), "-m", "pip", "install", "-q"]
        if first_installs(pins):
            _run([*pip, *first_installs(pins)])
        _run([*pip, "-r", str(requirements)])
        stamp.write_text(digest + "\n")
        created = True
    if not python.is_file():
        raise FileNotFoundError(f"{python} not found: --venv must name a virtual environment")
    freeze = _run([str(python), "-m", "pip", "freeze"]).stdout
    wrong = pin_mismatches(pins, freeze)
    if wrong:
        raise RuntimeError(f"{venv} does not hold the pinned versions: {', '.join(wrong)}")
    shown = venv.relative_to(PROJECT) if venv.is_relative_to(PROJECT) else venv
    return python, {"path": str(shown), "created": created,
                    "seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip


def write_hf_model(net: Any, out: Path) -> Path:
    """The fine-tuned encoder in Hugging Face format, with the packaged tokenizer files."""
    from flywheel.families.sentiment.package import model_dir

    shutil.rmtree(out, ignore_errors=True)
    net.encoder.save_pretrained(str(out))
    for name in ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
        if (model_dir() / name).is_file():
            shutil.copy2(model_dir() / name, out / name)
    return out


def run_worker(python: Path, model: Path, out: Path, preset: str) -> dict[str, Any]:
    shutil.rmtree(out, ignore_errors=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "HF_HUB_DISABLE_TELEMETRY": "1", "PYTHONPATH": ""}  # fmt: skip
    cmd = [str(python), str(WORKER), "--model", str(model), "--out", str(out), "--preset", preset]
    _run(cmd, env=env, timeout=1800)
    return dict(json.loads((out / "manifest.json").read_text()))


# --- measurement ----------------------------------------------------------------------------


def head_layers(net: Any) -> Head:
    import torch

    linears = [m for m in net.head if isinstance(m, torch.nn.Linear)]
    return [(lin.weight.detach().numpy().copy(), lin.bias.detach().numpy().copy())
            for lin in linears]  # fmt: skip


def peer_runner(path: Path, threads: int, pad_id: int, head: Head) -> Callable[[Any], Any]:
    """Token ids -> logits through an Optimum encoder file, as Flywheel's graph computes them."""
    from flywheel.core.ort import CPU, make_session

    session = make_session(path, intra_op_threads=threads, providers=[CPU])
    names = {i.name for i in session.get_inputs()}

    def run(ids: np.ndarray) -> np.ndarray:
        mask = ids != pad_id
        feed = {"input_ids": ids, "attention_mask": mask.astype(np.int64),
                "token_type_ids": np.zeros_like(ids)}  # fmt: skip
        states = session.run([OUTPUT], {k: v for k, v in feed.items() if k in names})[0]
        return mean_pool_head(states, mask, head)

    return run


def cpu_p50_ms(runners: Mapping[str, Callable[[Any], Any]], x: np.ndarray, rounds: int,
               calls: int) -> dict[str, float]:  # fmt: skip
    """Median on-CPU time of batch-1 calls (``time.thread_time``), interleaved like the wall
    timings. With one intra-op thread both runtimes compute in the calling thread, so this
    leaves out the time a busy shared machine keeps the process waiting: a cross-check."""
    singles = [np.ascontiguousarray(x[i : i + 1]) for i in range(min(len(x), calls))]
    samples: dict[str, list[float]] = {n: [] for n in runners}
    names = list(runners)
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            for row in singles:
                t0 = time.thread_time_ns()
                runners[name](row)
                samples[name].append((time.thread_time_ns() - t0) / 1e6)
    return {n: round(float(np.median(v)), 4) for n, v in samples.items()}


def measure(ws: Any, manifest: Mapping[str, Any], out: Path, quick: bool) -> dict[str, Any]:
    """Eager, Flywheel's fp32 and deployed files and every Optimum file, side by side."""
    from benchmarks.inference_timing import FULL, QUICK, time_all
    from flywheel.core.ort import CPU
    from flywheel.datasets.arrays import load_split
    from flywheel.families import get_family
    from flywheel.measure.runners import onnx_runner, output_metrics
    from flywheel.nn.checkpoint import load_network
    from flywheel.nn.eager import state_dict_bytes, torch_runner, torch_threads

    params, layout = ws.params, ws.layout
    spec = get_family(params.task).load_spec(layout.preprocessing_spec)
    x, y = load_split(layout.split_file("test"))
    deployed = json.loads(layout.evaluation_report.read_text())["winner"]
    threads = params.evaluate.intra_op_threads
    net = load_network(layout.checkpoint, params, spec)
    runners: dict[str, Any] = {"torch-eager": torch_runner(net)}
    sizes, sides = {"torch-eager": state_dict_bytes(net)}, {"torch-eager": "baseline"}
    for v in dict.fromkeys(["fp32", deployed]):
        runners[v] = onnx_runner(layout.variant_file(v), threads, [CPU])[0]
        sizes[v], sides[v] = layout.variant_file(v).stat().st_size, "flywheel"
    head = head_layers(net)
    for name, step in manifest["models"].items():
        key = f"optimum-{name}"
        runners[key] = peer_runner(out / step["file"], threads, spec.tokenizer.pad_id, head)
        sizes[key], sides[key] = (out / step["file"]).stat().st_size, "optimum"
    with torch_threads(threads):
        scores = {n: output_metrics(r, x, y, 64, False)["accuracy"] for n, r in runners.items()}
        timing = time_all(runners, x, QUICK if quick else FULL)
        cpu = cpu_p50_ms(runners, x, rounds=3 if quick else 6, calls=40)
    models = {
        n: {
            "side": sides[n],
            "score": scores[n],
            "size_bytes": sizes[n],
            **timing[n],
            "cpu_latency_p50_ms": cpu[n],
        }
        for n in runners
    }
    return {
        "params_file": "examples/sentiment/params.yaml",
        "metric": "accuracy",
        "test_samples": len(x),
        "test_width_tokens": int(x.shape[1]),
        "intra_op_threads": threads,
        "deployed": deployed,
        "models": models,
    }


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
