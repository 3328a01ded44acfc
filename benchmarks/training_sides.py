"""The two sides of the training benchmark: the train stage's own Lightning fit, and a
hand-written PyTorch loop doing the same work, each timed over the whole call."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks.training_workloads import Workload


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
        optimizer, scheduler = _optimiser(net, cfg, epochs)
        train = make_loader(*w.train, cfg.batch_size, shuffle=True, seed=w.params.seed)
        val = make_loader(*w.val, 256, shuffle=False)
        loss_and_hits, epoch_means = _metrics(regression, device)
        best_score, best_loss, stale = -float("inf"), float("inf"), 0
        for epoch in range(epochs):
            net.train()
            bar = tqdm(train, desc=f"Epoch {epoch}", disable=not progress, leave=False)
            losses, hits, sizes = _train_epoch(model, bar, optimizer, device, bf16, loss_and_hits)
            scheduler.step()
            train_loss, _ = epoch_means(losses, hits, sizes)
            net.eval()
            val_loss, val_score = epoch_means(*_val_epoch(model, val, device, bf16, loss_and_hits))
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


def _optimiser(net: Any, cfg: Any, epochs: int) -> tuple[Any, Any]:
    """AdamW and a cosine schedule over ``epochs``, as the train stage's module builds them."""
    import torch

    params = [p for p in net.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, epochs))
    return optimizer, scheduler


def _metrics(regression: bool, device: str) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """The per-batch loss (and hits) and the per-epoch reduction the plain loop keeps."""
    import torch
    from torch.nn import functional as F

    def loss_and_hits(out: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, Any]:
        if regression:
            return F.mse_loss(out.squeeze(-1), y.float()), None
        return F.cross_entropy(out, y), (out.argmax(dim=1) == y).sum()

    def epoch_means(losses: list[Any], hits: list[Any], sizes: list[int]) -> tuple[float, float]:
        # What SupervisedModule logs once per epoch: mean loss, accuracy (or RMSE).
        n = sum(sizes)
        loss = float((torch.stack(losses) * torch.tensor(sizes, device=device)).sum()) / n
        return loss, (loss**0.5 if regression else float(torch.stack(hits).sum()) / n)

    return loss_and_hits, epoch_means


def _train_epoch(
    model: Callable[..., Any],
    batches: Any,
    optimizer: Any,
    device: str,
    bf16: bool,
    loss_and_hits: Callable[..., Any],
) -> tuple[list[Any], list[Any], list[int]]:
    import torch

    losses: list[Any] = []
    hits: list[Any] = []
    sizes: list[int] = []
    for x, y in batches:
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
    return losses, hits, sizes


def _val_epoch(
    model: Callable[..., Any], val: Any, device: str, bf16: bool, loss_and_hits: Callable[..., Any]
) -> tuple[list[Any], list[Any], list[int]]:
    import torch

    losses: list[Any] = []
    hits: list[Any] = []
    sizes: list[int] = []
    with torch.inference_mode():  # Lightning validates in inference mode
        for x, y in val:
            x, y = x.to(device), y.to(device)
            with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=bf16):
                out = model(x)
            loss, hit = loss_and_hits(out.float(), y)
            losses.append(loss)
            hits.append(hit)
            sizes.append(len(y))
    return losses, hits, sizes
