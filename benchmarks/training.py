"""Training: the pipeline's Lightning ``Trainer`` vs a plain PyTorch loop doing the same work.

Both sides train the same network (same seed, same initial weights) on the same
preprocessed split with the same batch size, optimiser (AdamW + cosine schedule), epochs,
per-epoch validation, best-checkpoint saving (weights) and early-stopping check, and keep
the same metrics the same way (per-batch tensors reduced once per epoch); Lightning runs
exactly as the train stage runs it (:func:`flywheel.nn.fit.fit_network`: progress bar
only on a terminal, no logger), and the plain loop draws a tqdm bar in the same case. Runs
alternate between the sides after one discarded warm-up run each, and samples/s is
measured over the whole call, set-up included. Each comparison also reports Lightning's
extra time per training step (set-up and per-epoch work spread over the steps).

Workloads: the default dataset (digits, 8x8) and, when ../shared/datasets/mnist exists,
MNIST (28x28, 10,000 images) as a larger one. On a GPU, also Lightning bf16-mixed vs fp32
and ``torch.compile`` on vs off; on a CPU-only machine those parts are skipped with the reason.

    python -m benchmarks.training [--quick] [--workload all|digits|mnist] [--threads N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import targets
from benchmarks.common import PROJECT, SHARED_DATASETS, ratio, skip, spread, write_result
from benchmarks.machine import gpu_info
from benchmarks.training_sides import lightning_fit, plain_fit
from benchmarks.training_workloads import Workload, digits_workload, mnist_workload


def compare(
    w: Workload, sides: dict[str, Callable[[int], float]], warmup_epochs: int = 1
) -> dict[str, Any]:
    """Alternating repeats of every side after one discarded warm-up run each.

    Each repeat also times a one-epoch run, so the per-call set-up cost and the steady
    per-epoch rate can be told apart: (t(E) - t(1)) / (E - 1) per epoch."""
    for fn in sides.values():
        fn(warmup_epochs)
    seconds: dict[str, list[float]] = {name: [] for name in sides}
    one_epoch: dict[str, list[float]] = {name: [] for name in sides}
    names = list(sides)
    for r in range(w.repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            seconds[name].append(sides[name](w.epochs))
            if w.epochs > 1:
                one_epoch[name].append(sides[name](1))
    samples = len(w.train[0]) * w.epochs
    out: dict[str, Any] = {}
    for name, s in seconds.items():
        out[name] = {
            "seconds": spread(s),
            "samples_per_s": spread(samples / t for t in s),
            "epochs": w.epochs,
            "train_samples": len(w.train[0]),
            "batch_size": w.params.train.batch_size,
        }
        if one_epoch[name]:
            one = spread(one_epoch[name])
            per_epoch = (spread(s)["median"] - one["median"]) / (w.epochs - 1)
            setup = one["median"] - per_epoch
            out[name]["one_epoch_seconds"] = one
            # Noise can make the difference meaningless (a negative set-up): then say nothing.
            sane = per_epoch > 0 and setup >= 0
            out[name]["steady_epoch_seconds"] = round(per_epoch, 4) if sane else None
            out[name]["setup_seconds"] = round(setup, 4) if sane else None
            out[name]["steady_samples_per_s"] = (
                round(len(w.train[0]) / per_epoch, 1) if sane else None
            )
    return out


def lightning_vs_plain(w: Workload) -> dict[str, Any]:
    sides = {
        "lightning": lambda e: lightning_fit(w, e),
        "plain": lambda e: plain_fit(w, e),
    }
    result = compare(w, sides)
    rate = ratio(
        result["lightning"]["samples_per_s"]["median"], result["plain"]["samples_per_s"]["median"]
    )
    steady = ratio(
        result["lightning"].get("steady_samples_per_s"), result["plain"].get("steady_samples_per_s")
    )
    # Lightning's extra time spread over the training steps (set-up and per-epoch work
    # included): the fixed cost a step must dwarf for the ratio to approach 1.
    steps = w.epochs * -(-len(w.train[0]) // w.params.train.batch_size)
    extra = result["lightning"]["seconds"]["median"] - result["plain"]["seconds"]["median"]
    return {
        "workload": w.name,
        "sides": result,
        "lightning_vs_plain_samples_per_s": rate,
        "lightning_vs_plain_steady_samples_per_s": steady,
        "train_steps": steps,
        "lightning_extra_ms_per_step": round(1000 * extra / steps, 3),
        "plain_ms_per_step": round(1000 * result["plain"]["seconds"]["median"] / steps, 3),
    }


def gpu_comparisons(w: Workload) -> dict[str, Any]:
    """Lightning bf16-mixed vs fp32 on the GPU, and torch.compile on vs off (plain loop)."""
    gpu_params = w.params.model_copy(
        update={
            "train": w.params.train.model_copy(update={"accelerator": "gpu", "precision": "32"})
        }
    )
    bf16_params = gpu_params.model_copy(
        update={"train": gpu_params.train.model_copy(update={"precision": "bf16-mixed"})}
    )
    precision = compare(
        w,
        {
            "lightning-gpu-fp32": lambda e: lightning_fit(w, e, gpu_params),
            "lightning-gpu-bf16-mixed": lambda e: lightning_fit(w, e, bf16_params),
        },
    )
    compiled = compare(
        w,
        {
            "plain-gpu-eager": lambda e: plain_fit(w, e, device="cuda"),
            "plain-gpu-compiled": lambda e: plain_fit(w, e, device="cuda", compile_net=True),
        },
    )
    return {
        "workload": w.name,
        "gpu": gpu_info(),
        "precision": precision,
        "bf16_vs_fp32_samples_per_s": ratio(
            precision["lightning-gpu-bf16-mixed"]["samples_per_s"]["median"],
            precision["lightning-gpu-fp32"]["samples_per_s"]["median"],
        ),
        "compile": compiled,
        "compiled_vs_eager_samples_per_s": ratio(
            compiled["plain-gpu-compiled"]["samples_per_s"]["median"],
            compiled["plain-gpu-eager"]["samples_per_s"]["median"],
        ),
    }


def run(quick: bool, threads: int, workload: str = "all") -> dict[str, Any]:
    out: dict[str, Any] = {"quick": quick, "comparisons": [], "skipped": [], "targets": []}
    with tempfile.TemporaryDirectory(prefix="bench-training-") as tmp:
        return _run(quick, threads, Path(tmp), out, workload)


def _run(
    quick: bool, threads: int, root: Path, out: dict[str, Any], workload: str = "all"
) -> dict[str, Any]:
    import torch

    if threads > 0:
        # Both sides get the same budget. On a small machine shared with other work, two
        # spinning OpenMP threads per step make timings swing several-fold; one does not.
        torch.set_num_threads(threads)
    out["torch_threads"] = torch.get_num_threads()
    workloads = []
    if workload in ("all", "digits"):
        # Five repeats: a run is ~1 s, and single runs on a shared machine swing by 30 %.
        workloads.append(
            digits_workload(root, epochs=2 if quick else 10, repeats=1 if quick else 5)
        )
    mnist = None if quick or workload == "digits" else mnist_workload(epochs=3, repeats=3)
    if mnist is not None:
        workloads.append(mnist)
    elif workload == "digits":
        out["skipped"].append(skip("mnist workload", "--workload digits"))
    elif not quick:
        out["skipped"].append(skip("mnist workload", f"{SHARED_DATASETS / 'mnist'} is absent"))
    else:
        out["skipped"].append(skip("mnist workload", "--quick trains on the default dataset only"))
    for w in workloads:
        print(f"training: {w.name}, {w.epochs} epochs x {w.repeats} repeats per side")
        comparison = lightning_vs_plain(w)
        out["comparisons"].append(comparison)
        out["targets"].append(
            targets.check(
                f"Lightning vs plain loop samples/s, {w.name}",
                comparison["lightning_vs_plain_samples_per_s"],
                targets.LIGHTNING_VS_PLAIN,
                at_most=False,
            )
        )
        print(
            f"  lightning/plain samples/s: {comparison['lightning_vs_plain_samples_per_s']}"
            f" (Lightning {comparison['lightning_extra_ms_per_step']:+} ms per step on top of"
            f" the plain loop's {comparison['plain_ms_per_step']} ms)"
        )
    if torch.cuda.is_available():
        try:
            gpu_w = mnist_workload(epochs=2, repeats=2, accelerator="gpu") or workloads[0]
            out["gpu"] = gpu_comparisons(gpu_w)
        except Exception as err:
            traceback.print_exc()
            out["skipped"].append(skip("GPU training", f"failed: {type(err).__name__}: {err}"))
    else:
        out["skipped"].append(
            skip(
                "GPU training (Lightning bf16-mixed vs fp32, torch.compile on vs off)",
                "no CUDA device: torch.cuda.is_available() is False on this machine",
            )
        )
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few epochs, one repeat")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch intra-op threads (0: torch's default)"
    )
    parser.add_argument(
        "--workload",
        choices=("all", "digits", "mnist"),
        default="all",
        help="which comparisons to run (default: all there are data for)",
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    path = write_result("training", run(args.quick, args.threads, args.workload), started)
    print(f"written {path.relative_to(PROJECT)}")


if __name__ == "__main__":
    main()
