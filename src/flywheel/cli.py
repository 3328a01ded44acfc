"""The ``flywheel`` command line. Thin: parse, set up logging, call the library, report."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from flywheel.errors import ConfigError, DataValidationError, FlywheelError, GateRejected

if TYPE_CHECKING:
    from flywheel.workspace import Workspace

app = typer.Typer(
    help="Flywheel: data change -> validate -> train -> compress -> gate -> deploy.",
    no_args_is_help=True,
)
data_app = typer.Typer(help="Datasets.", no_args_is_help=True)
expectations_app = typer.Typer(help="Great Expectations suites.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(expectations_app, name="expectations")

ParamsOpt = Annotated[
    Path | None, typer.Option("--params", "-p", help="Params file (default: ./params.yaml).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]

EXIT_CODES: dict[type[FlywheelError], int] = {
    ConfigError: 2,
    DataValidationError: 3,
    GateRejected: 4,
}


def _fail(err: FlywheelError) -> typer.Exit:
    code = next((c for kind, c in EXIT_CODES.items() if isinstance(err, kind)), 1)
    typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


LIBRARY_LOGGERS = ("great_expectations", "dvc", "lightning.pytorch", "onnxruntime")


@app.callback()
def _main(verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Prefect's client logs every HTTP call at INFO, and the libraries the stages run in this
    # process narrate their internals; a terminal gets their warnings, --verbose the rest.
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if not verbose:
        for chatty in LIBRARY_LOGGERS:
            logging.getLogger(chatty).setLevel(logging.WARNING)


def _workspace(params: Path | None) -> Workspace:
    from flywheel.workspace import open_workspace

    return open_workspace(params)


@data_app.command("init")
def data_init(
    path: Annotated[Path, typer.Option(help="Target folder.")] = Path("data"),
    force: Annotated[bool, typer.Option("--force", help="Rewrite a non-empty folder.")] = False,
) -> None:
    """Materialise the default dataset (scikit-learn digits) as a PNG image folder."""
    from flywheel.data.digits import materialise_digits

    try:
        n = materialise_digits(path, overwrite=force)
    except FileExistsError as err:
        typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None
    typer.echo(f"wrote {n} images to {path}/")


@data_app.command("import-idx")
def data_import_idx(
    images: Annotated[Path, typer.Argument(help="IDX images, e.g. t10k-images-idx3-ubyte.gz.")],
    labels: Annotated[Path, typer.Argument(help="IDX labels, one per image.")],
    dest: Annotated[Path, typer.Argument(help="New image folder (absent or empty).")],
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Import only the first N images.")
    ] = None,
) -> None:
    """Convert an IDX pair (the MNIST format, gzip or plain) to a PNG image folder."""
    from flywheel.data.idx import import_idx

    try:
        n = import_idx(images, labels, dest, limit=limit)
    except FlywheelError as err:
        raise _fail(err) from None
    typer.echo(f"wrote {n} images to {dest}/")


@expectations_app.command("init")
def expectations_init(params: ParamsOpt = None) -> None:
    """Generate the expectation suite named by validate.suite from the params and store it."""
    from flywheel.validation.suite import save_suite

    try:
        ws = _workspace(params)
        path = save_suite(ws.params, ws.layout)
    except FlywheelError as err:
        raise _fail(err) from None
    typer.echo(f"suite {ws.params.validate_.suite!r} written to {path}")


@app.command()
def validate(params: ParamsOpt = None, as_json: JsonOpt = False) -> None:
    """Validate the dataset against its suite (outside DVC, for a quick check)."""
    from flywheel.validation.run import validate_dataset

    try:
        ws = _workspace(params)
        report = validate_dataset(ws.params, ws.layout)
    except FlywheelError as err:
        raise _fail(err) from None
    typer.echo(
        report.to_json() if as_json else f"ok: {report.total_rows} rows pass suite {report.suite!r}"
    )


@app.command()
def stage(
    name: Annotated[str, typer.Argument(help="validate|preprocess|train|export|compress|evaluate")],
) -> None:
    """Run one pipeline stage in the current workspace (this is what dvc.yaml calls)."""
    from flywheel.stages import STAGE_FUNCTIONS, run_stage

    if name not in STAGE_FUNCTIONS:
        typer.secho(
            f"error: unknown stage {name!r}; one of {', '.join(STAGE_FUNCTIONS)}",
            fg="red",
            err=True,
        )
        raise typer.Exit(2)
    try:
        result = run_stage(name)
    except FlywheelError as err:
        raise _fail(err) from None
    typer.echo(json.dumps(result, indent=2, default=str))


def _prefect_env(project: Path) -> None:
    # Runs stay local and quiet unless the user points us at a server of their own.
    os.environ.setdefault("PREFECT_HOME", str(project / ".prefect"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


_ROW_KEYS = {
    "variant",
    "winner",
    "size_kb",
    "p50_ms_batch1",
    "p99_ms_batch1",
    "throughput_per_s_batch64",
}


def _print_run(record: dict[str, Any]) -> None:
    typer.echo(f"data hash: {record['data_hash']}")
    for name, s in record["stages"].items():
        typer.echo(f"  stage {name:<10} {'ran' if s['ran'] else 'cached':<7} {s['seconds']}s")
    deploy = record.get("deploy") or {}
    if record.get("variants"):
        metric = next(k for k in record["variants"][0] if k not in _ROW_KEYS)
        typer.echo(f"  {'variant':<26}{metric:>9}{'size KB':>9}{'p50 ms':>9}{'rows/s@64':>10}")
        for v in record["variants"]:
            mark = "*" if v["winner"] else " "
            typer.echo(
                f" {mark}{v['variant']:<26}{v[metric]:>9.4f}{v['size_kb']:>9.1f}"
                f"{v['p50_ms_batch1']:>9.4f}{v['throughput_per_s_batch64']:>10.0f}"
            )
    typer.echo(f"decision: {deploy.get('status')} ({deploy.get('reason')})")
    typer.echo(f"production: {deploy.get('version')}")
    if record.get("nothing_to_do"):
        typer.echo("nothing to do: data and params unchanged, every stage cached, nothing deployed")


@app.command()
def run(params: ParamsOpt = None, as_json: JsonOpt = False) -> None:
    """Run the whole pipeline once as a Prefect flow (answered at once when nothing changed)."""
    from flywheel.workspace import find_project

    try:
        project = find_project()
        ws = _workspace(params)
    except FlywheelError as err:
        raise _fail(err) from None
    from flywheel import orchestration

    try:
        # Without a Prefect server of the user's, a run that would change nothing is answered
        # here, like `make`, rather than after starting an ephemeral server (about 15 s).
        done = None if os.environ.get("PREFECT_API_URL") else orchestration.up_to_date(ws)
        if done is not None:
            result = {"record": orchestration.record_json(done)}
        else:
            _prefect_env(project)
            from flows.pipeline import pipeline

            result = pipeline(params_file=str(ws.params_file), project=str(project))
    except FlywheelError as err:
        raise _fail(err) from None
    record = json.loads(result["record"])
    record["variants"] = orchestration.variant_rows(ws)
    if as_json:
        typer.echo(json.dumps(record, indent=2))
    else:
        _print_run(record)


@app.command()
def models(params: ParamsOpt = None, as_json: JsonOpt = False) -> None:
    """List registered model versions and which one is in production."""
    from flywheel.registry import Registry

    try:
        ws = _workspace(params)
        registry = Registry(ws.layout.registry)
        cards = registry.cards()
        production = registry.production_version()
    except FlywheelError as err:
        raise _fail(err) from None
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


@app.command()
def predict(
    paths: Annotated[list[Path], typer.Argument(help="Image files to classify.")],
    params: ParamsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Classify image files with the production model (same preprocessing as training)."""
    from flywheel.data.images import InputError
    from flywheel.inference import Predictor
    from flywheel.registry import Registry

    try:
        ws = _workspace(params)
        predictor = Predictor.from_registry(Registry(ws.layout.registry))
        sources: list[str] = []
        instances: list[object] = []
        for path in paths:
            # An image file is one instance; a table file is one instance per row.
            read = predictor.family.read_inputs([path])
            sources += (
                [str(path)] if len(read) == 1 else [f"{path}:{i + 1}" for i in range(len(read))]
            )
            instances += read
        predictions = predictor.predict_instances(instances)
    except (FlywheelError, InputError) as err:
        typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None
    if as_json:
        payload = {
            "model_version": predictor.version,
            "predictions": [
                {"path": p, **pr.as_dict()} for p, pr in zip(sources, predictions, strict=True)
            ],
        }
        typer.echo(json.dumps(payload, indent=2))
        return
    for p, pr in zip(sources, predictions, strict=True):
        if pr.label is None:
            typer.echo(f"{p}\t{pr.fields['value']:.6g}")
        else:
            typer.echo(f"{p}\t{pr.label}\t{pr.probabilities[pr.label]:.4f}")


@app.command()
def rollback(params: ParamsOpt = None) -> None:
    """Move production back to the version it pointed at before."""
    from flywheel.registry import Registry

    try:
        ws = _workspace(params)
        card = Registry(ws.layout.registry).rollback()
    except FlywheelError as err:
        raise _fail(err) from None
    typer.echo(f"production is now {card.version}")


@app.command()
def serve(
    params: ParamsOpt = None,
    host: Annotated[str | None, typer.Option(help="Bind address (default serve.host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default serve.port).")] = None,
) -> None:
    """Serve the production model over HTTP with ONNX Runtime."""
    from flywheel.serving.server import run_server

    try:
        ws = _workspace(params)
        run_server(ws.params, ws.root, host, port)
    except FlywheelError as err:
        raise _fail(err) from None


from flywheel.cli_service import register as _register_service  # noqa: E402

_register_service(app)

if __name__ == "__main__":  # pragma: no cover
    app()
