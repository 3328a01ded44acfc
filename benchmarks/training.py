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
import gzip
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import targets
from benchmarks.common import PROJECT, SHARED_DATASETS, ratio, skip, spread, write_result
from benchmarks.machine import gpu_info


@dataclass(frozen=True)
class Workload:
    name: str
    params: Any  # flywheel.core.config.Params
    spec: Any
    train: tuple[np.ndarray, np.ndarray]
    val: tuple[np.ndarray, np.ndarray]
    epochs: int
    repeats: int


def _params(overrides: dict[str, Any]) -> Any:
    import yaml

    from flywheel.core.config import parse_params

    raw = yaml.safe_load((PROJECT / "params.yaml").read_text())
    for section, values in overrides.items():
        raw.setdefault(section, {}).update(values)
    return parse_params(raw, "benchmarks/training.py")


def digits_workload(root: Path, epochs: int, repeats: int) -> Workload:
    """The default dataset through the pipeline's own preprocessing."""
    from flywheel.core.layout import Layout
    from flywheel.datasets.arrays import load_split
    from flywheel.families.image.manifest import build_manifest
    from flywheel.families.image.pixels import PreprocessingSpec
    from flywheel.stages.preprocess import run as run_preprocess

    # No early stop: both sides must run every epoch for a like-for-like rate.
    params = _params({"train": {"patience": epochs + 1, "accelerator": "cpu"}})
    layout = Layout.from_params(params, root)
    data = PROJECT / "data"
    if not data.is_dir():
        from flywheel.datasets.digits import materialise_digits

        data = root / "data"
        materialise_digits(data)
    manifest = layout.accepted_manifest
    manifest.parent.mkdir(parents=True, exist_ok=True)
    build_manifest(data)[["path", "label", "sha256"]].to_csv(manifest, index=False)
    layout = Layout(layout.root, layout.artifacts, layout.registry, layout.expectations, data)
    run_preprocess(params, layout)
    spec = PreprocessingSpec.load(layout.preprocessing_spec)
    return Workload(
        "default (digits 8x8)",
        params,
        spec,
        load_split(layout.split_file("train")),
        load_split(layout.split_file("val")),
        epochs,
        repeats,
    )


def _idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as fh:
        raw = fh.read()
    dims = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def mnist_workload(epochs: int, repeats: int, accelerator: str = "cpu") -> Workload | None:
    folder = SHARED_DATASETS / "mnist"
    images = folder / "t10k-images-idx3-ubyte.gz"
    labels = folder / "t10k-labels-idx1-ubyte.gz"
    if not (images.is_file() and labels.is_file()):
        return None
    from flywheel.families.image.pixels import PreprocessingSpec

    x = _idx(images).astype(np.float32)[:, None] / 255.0
    y = _idx(labels).astype(np.int64)
    mean, std = float(x.mean()), float(x.std())
    x = (x - mean) / std
    order = np.random.default_rng(0).permutation(len(x))
    cut = int(len(x) * 0.85)
    params = _params(
        {
            "image": {"size": 28},
            "train": {"patience": epochs + 1, "accelerator": accelerator},
            "validate": {"min_width": 28, "max_width": 28, "min_height": 28, "max_height": 28},
        }
    )
    labels_ = tuple(str(i) for i in range(10))
    spec = PreprocessingSpec(size=28, mode="L", mean=(mean,), std=(std,), labels=labels_)
    tr, va = order[:cut], order[cut:]
    return Workload("mnist (28x28)", params, spec, (x[tr], y[tr]), (x[va], y[va]), epochs, repeats)


def _network(w: Workload) -> Any:
    import torch

    from flywheel.families import get_family

    torch.manual_seed(w.params.seed)
    return get_family(w.params.task).build_network(w.params, w.spec)


@contextmanager
def _deterministic() -> Any:
    # Lightning's Trainer(deterministic=True), which the pipeline uses, sets this too.
    import torch

    # cuBLAS needs this for deterministic GEMMs on a GPU; Lightning sets the same value.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before)


def lightning_fit(w: Workload, epochs: int, params: Any | None = None) -> float:
    """Seconds for the train stage's own fit on ``w`` (Trainer built inside, as it is there)."""
    from flywheel.nn.fit import fit_network

    net = _network(w)
    with tempfile.TemporaryDirectory(prefix="bench-lightning-") as tmp:
        t0 = time.perf_counter()
        fit_network(
            net, params or w.params, w.train, w.val, max_epochs=epochs, checkpoint_dir=Path(tmp)
        )
        return time.perf_counter() - t0


def plain_fit(
    w: Workload,
    epochs: int,
    *,
    device: str = "cpu",
    bf16: bool = False,
    compile_net: bool = False,
) -> float:
    """Seconds for a hand-written loop doing what the Lightning fit does.

    Timed like :func:`lightning_fit`: the network is built before the clock starts, the
    loaders, optimiser and schedule after it (``fit_network`` builds them inside). The
    metrics are kept as the pipeline's module keeps them (per-batch tensors, reduced once
    per epoch, no per-step sync), and a progress bar is drawn when stderr is a terminal,
    as the train stage draws one."""
    import torch
    from torch.nn import functional as F
    from tqdm import tqdm

    from flywheel.datasets.arrays import make_loader
    from flywheel.families import get_family

    cfg = w.params.train
    regression = get_family(w.params.task).objective == "regression"
    net = _network(w)
    progress = sys.stderr.isatty()
    with tempfile.TemporaryDirectory(prefix="bench-plain-") as tmp, _deterministic():
        ckpt = Path(tmp) / "model.pt"
        t0 = time.perf_counter()
        net = net.to(device).train()
        model: Callable[[torch.Tensor], torch.Tensor] = torch.compile(net) if compile_net else net
        params = [p for p in net.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, epochs))
        train = make_loader(*w.train, cfg.batch_size, shuffle=True, seed=w.params.seed)
        val = make_loader(*w.val, 256, shuffle=False)

        def loss_and_hits(out: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, Any]:
            if regression:
                return F.mse_loss(out.squeeze(-1), y.float()), None
            return F.cross_entropy(out, y), (out.argmax(dim=1) == y).sum()

        def epoch_means(
            losses: list[Any], hits: list[Any], sizes: list[int]
        ) -> tuple[float, float]:
            # What SupervisedModule logs once per epoch: mean loss, accuracy (or RMSE).
            n = sum(sizes)
            loss = float((torch.stack(losses) * torch.tensor(sizes, device=device)).sum()) / n
            return loss, (loss**0.5 if regression else float(torch.stack(hits).sum()) / n)

        best_score, best_loss, stale = -float("inf"), float("inf"), 0
        for epoch in range(epochs):
            net.train()
            losses: list[Any] = []
            hits: list[Any] = []
            sizes: list[int] = []
            bar = tqdm(train, desc=f"Epoch {epoch}", disable=not progress, leave=False)
            for x, y in bar:
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                optimizer.zero_grad(set_to_none=True)
                with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=bf16):
                    out = model(x)
                loss, hit = loss_and_hits(out.float(), y)
                loss.backward()
                optimizer.step()
                losses.append(loss.detach())
                hits.append(hit)
                sizes.append(len(y))
            scheduler.step()
            train_loss, _ = epoch_means(losses, hits, sizes)
            net.eval()
            losses, hits, sizes = [], [], []
            with torch.inference_mode():  # Lightning validates in inference mode
                for x, y in val:
                    x, y = x.to(device), y.to(device)
                    with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=bf16):
                        out = model(x)
                    loss, hit = loss_and_hits(out.float(), y)
                    losses.append(loss)
                    hits.append(hit)
                    sizes.append(len(y))
            val_loss, val_score = epoch_means(losses, hits, sizes)
            bar.set_postfix(train_loss=train_loss, val_loss=val_loss, val_score=val_score)
            bar.close()
            monitored = -val_loss if regression else val_score
            if monitored > best_score:  # ModelCheckpoint(save_top_k=1, save_weights_only)
                best_score = monitored
                torch.save(net.state_dict(), ckpt)
            if val_loss < best_loss:  # EarlyStopping(val_loss, patience)
                best_loss, stale = val_loss, 0
            else:
                stale += 1
                if stale >= cfg.patience:
                    break
        net.load_state_dict(torch.load(ckpt, map_location=device, weights_only=True))
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t0


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
