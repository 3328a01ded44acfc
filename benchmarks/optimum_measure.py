"""The Optimum peer measured: Optimum's encoder files turned into logits as Flywheel's graph
computes them, and timed and scored side by side with eager PyTorch and Flywheel's files."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

OUTPUT = "last_hidden_state"
Head = list[tuple[np.ndarray, np.ndarray]]


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
