"""Train stage: the family's network fitted on the preprocessed splits; the best weights,
their metrics on every split and the training curve (a DVC plot)."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict

import lightning as L

from flywheel.core.config import Params
from flywheel.core.layout import Layout
from flywheel.datasets.arrays import load_split
from flywheel.families import get_family
from flywheel.nn import distributed, progress
from flywheel.nn.checkpoint import evaluate_network
from flywheel.nn.fit import fit_network

log = logging.getLogger(__name__)


def run(params: Params, layout: Layout) -> dict[str, object]:
    if distributed.wanted(params.train) and not distributed.inside_launcher():
        # Every rank runs this function again under torchrun; rank 0 writes the outputs.
        return distributed.launch(params.train, layout.root, layout.train_metrics)
    L.seed_everything(params.seed, workers=True, verbose=False)
    family = get_family(params.task)
    spec = family.load_spec(layout.preprocessing_spec)
    train, val, test = (load_split(layout.split_file(s)) for s in ("train", "val", "test"))
    layout.model_dir.mkdir(parents=True, exist_ok=True)
    net, fit, rows = fit_network(
        family.build_network(params, spec),
        params,
        train,
        val,
        max_epochs=params.train.max_epochs,
        checkpoint_dir=layout.model_dir,
        extra_callbacks=progress.callbacks() if distributed.global_rank() == 0 else [],
    )
    if distributed.global_rank() != 0:
        return {}
    metrics: dict[str, object] = {
        **asdict(fit),
        **{f"val_{k}": round(v, 6) for k, v in evaluate_network(net, params, *val).items()},
        **{f"test_{k}": round(v, 6) for k, v in evaluate_network(net, params, *test).items()},
        "parameters": sum(p.numel() for p in net.parameters()),
    }
    layout.train_metrics.parent.mkdir(parents=True, exist_ok=True)
    layout.train_metrics.write_text(json.dumps(metrics, indent=2) + "\n")
    layout.train_curve.parent.mkdir(parents=True, exist_ok=True)
    header = "epoch,train_loss,val_loss,val_score\n"
    body = "".join(
        f"{int(r['epoch'])},{r['train_loss']:.6f},{r['val_loss']:.6f},{r['val_score']:.6f}\n"
        for r in rows
    )
    layout.train_curve.write_text(header + body)
    tests = {k: v for k, v in metrics.items() if k.startswith("test_")}
    log.info(
        "trained %d epoch(s) in %.1fs on %s (%s): %s",
        fit.epochs_run,
        fit.seconds,
        fit.accelerator,
        fit.precision,
        tests,
    )
    return metrics


def main(argv: list[str] | None = None) -> None:
    """One rank of a distributed training (flywheel.nn.distributed launches torchrun)."""
    import sys
    from pathlib import Path

    from flywheel.core.workspace import workspace_at

    ws = workspace_at(Path((argv or sys.argv[1:])[0]))
    run(ws.params, ws.layout)


if __name__ == "__main__":  # pragma: no cover
    main()
