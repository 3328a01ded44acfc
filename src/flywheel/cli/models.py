"""``flywheel models | predict | rollback | serve``: the registry and the production model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from flywheel.cli.common import JsonOpt, ParamsOpt, fail, handled, workspace


def _listing(registry: Any) -> tuple[str | None, list[dict[str, Any]], list[str]]:
    """Production, one entry per version (its card, or why it cannot be read, and where
    it stands), and the registry's problems, each with its fix."""
    from flywheel.core.errors import RegistryError

    problems: list[str] = []
    try:
        production = registry.production_version()
    except RegistryError as err:
        production, problems = None, [str(err)]
    entries: list[dict[str, Any]] = []
    for version in registry.versions():
        try:
            card = registry.card(version)
        except RegistryError as err:
            problems.append(str(err))
            entries.append({"version": version, "card": None, "status": "unreadable"})
            continue
        entries.append(
            {"version": version, "card": card, "status": registry.status(version, production)}
        )
    return production, entries, problems


@handled
def models(params: ParamsOpt = None, as_json: JsonOpt = False) -> None:
    """List registered model versions and which one is in production."""
    from flywheel.release.registry import open_registry

    ws = workspace(params)
    registry = open_registry(ws.layout.registry, ws.params.remote)
    production, entries, problems = _listing(registry)
    if as_json:
        versions = [
            {
                **(e["card"].model_dump(mode="json") if e["card"] else {"version": e["version"]}),
                "status": e["status"],
            }
            for e in entries
        ]
        typer.echo(
            json.dumps(
                {"production": production, "versions": versions, "problems": problems}, indent=2
            )
        )
    else:
        if not entries:
            typer.echo("no models registered yet")
        for e in entries:
            typer.echo(_line(e, production))
    if problems:
        raise fail("; ".join(problems), 1)


def _line(entry: dict[str, Any], production: str | None) -> str:
    card = entry["card"]
    if card is None:
        return f"  {entry['version']}  (card unreadable: see below)"
    mark = "*" if card.version == production else " "
    metric = str(card.params.get("gate", {}).get("metric", "accuracy"))
    score = card.metrics.get(metric, float("nan"))
    status = "" if entry["status"] in ("production", "superseded") else f"  [{entry['status']}]"
    return (
        f"{mark} {card.version}  {card.created_at}  {card.variant:<12} {metric}={score:.4f}"
        f"  {card.size_bytes / 1024:.1f} KB  data={card.data_hash[:8]}{status}"
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
    from flywheel.release.registry import open_registry

    ws = workspace(params)
    predictor = Predictor.from_registry(open_registry(ws.layout.registry, ws.params.remote))
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
    """Move production back to the version it pointed at before (with a corrupt
    production.json: to the last good version the registry's journal names)."""
    from flywheel.release.registry import open_registry

    ws = workspace(params)
    card = open_registry(ws.layout.registry, ws.params.remote).rollback()
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
