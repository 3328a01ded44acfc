"""``flywheel models | predict | rollback | serve``: the registry and the production model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from flywheel.cli.common import JsonOpt, ParamsOpt, handled, workspace


@handled
def models(params: ParamsOpt = None, as_json: JsonOpt = False) -> None:
    """List registered model versions and which one is in production."""
    from flywheel.release.registry import Registry

    registry = Registry(workspace(params).layout.registry)
    cards = registry.cards()
    production = registry.production_version()
    if as_json:
        payload = {"production": production, "versions": [c.model_dump(mode="json") for c in cards]}
        typer.echo(json.dumps(payload, indent=2))
        return
    if not cards:
        typer.echo("no models registered yet")
    for c in cards:
        mark = "*" if c.version == production else " "
        metric = str(c.params.get("gate", {}).get("metric", "accuracy"))
        typer.echo(
            f"{mark} {c.version}  {c.created_at}  {c.variant:<12} {metric}={c.metrics[metric]:.4f}"
            f"  {c.size_bytes / 1024:.1f} KB  data={c.data_hash[:8]}"
        )


def _read_instances(family: Any, paths: list[Path]) -> tuple[list[str], list[object]]:
    """Instances from files, each named: an image file is one instance, a table one per row."""
    sources: list[str] = []
    instances: list[object] = []
    for path in paths:
        read = family.read_inputs([path])
        sources += [str(path)] if len(read) == 1 else [f"{path}:{i + 1}" for i in range(len(read))]
        instances += read
    return sources, instances


@handled
def predict(
    paths: Annotated[list[Path], typer.Argument(help="Files to predict (images, texts, tables).")],
    params: ParamsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Predict with the production model (the same preprocessing as training)."""
    from flywheel.release.predictor import Predictor
    from flywheel.release.registry import Registry

    predictor = Predictor.from_registry(Registry(workspace(params).layout.registry))
    sources, instances = _read_instances(predictor.family, paths)
    predictions = predictor.predict_instances(instances)
    if as_json:
        rows = [{"path": p, **pr.as_dict()} for p, pr in zip(sources, predictions, strict=True)]
        typer.echo(json.dumps({"model_version": predictor.version, "predictions": rows}, indent=2))
        return
    for p, pr in zip(sources, predictions, strict=True):
        if pr.label is None:
            typer.echo(f"{p}\t{pr.fields['value']:.6g}")
        else:
            typer.echo(f"{p}\t{pr.label}\t{pr.probabilities[pr.label]:.4f}")


@handled
def rollback(params: ParamsOpt = None) -> None:
    """Move production back to the version it pointed at before."""
    from flywheel.release.registry import Registry

    card = Registry(workspace(params).layout.registry).rollback()
    typer.echo(f"production is now {card.version}")


@handled
def serve(
    params: ParamsOpt = None,
    host: Annotated[str | None, typer.Option(help="Bind address (default serve.host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default serve.port).")] = None,
) -> None:
    """Serve the production model over HTTP with ONNX Runtime."""
    from flywheel.serving.server import run_server

    ws = workspace(params)
    run_server(ws.params, ws.root, host, port)


def register(app: typer.Typer) -> None:
    for command in (models, predict, rollback, serve):
        app.command()(command)
