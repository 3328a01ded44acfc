"""``flywheel data ...`` and ``flywheel expectations ...``: datasets and their suites."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flywheel.cli.common import ParamsOpt, handled, workspace

data_app = typer.Typer(help="Datasets.", no_args_is_help=True)
expectations_app = typer.Typer(help="Great Expectations suites.", no_args_is_help=True)


@data_app.command("init")
@handled
def data_init(
    path: Annotated[Path, typer.Option(help="Target folder.")] = Path("data"),
    force: Annotated[bool, typer.Option("--force", help="Rewrite a non-empty folder.")] = False,
) -> None:
    """Materialise the default dataset (scikit-learn digits) as a PNG image folder."""
    from flywheel.datasets.digits import materialise_digits

    n = materialise_digits(path, overwrite=force)
    typer.echo(f"wrote {n} images to {path}/")


@data_app.command("import-idx")
@handled
def data_import_idx(
    images: Annotated[Path, typer.Argument(help="IDX images, e.g. t10k-images-idx3-ubyte.gz.")],
    labels: Annotated[Path, typer.Argument(help="IDX labels, one per image.")],
    dest: Annotated[Path, typer.Argument(help="New image folder (absent or empty).")],
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Import only the first N images.")
    ] = None,
) -> None:
    """Convert an IDX pair (the MNIST format, gzip or plain) to a PNG image folder."""
    from flywheel.datasets.idx import import_idx

    n = import_idx(images, labels, dest, limit=limit)
    typer.echo(f"wrote {n} images to {dest}/")


@expectations_app.command("init")
@handled
def expectations_init(params: ParamsOpt = None) -> None:
    """Generate the expectation suite named by validate.suite from the params and store it."""
    from flywheel.stages.validate.suite import save_suite

    ws = workspace(params)
    path = save_suite(ws.params, ws.layout)
    typer.echo(f"suite {ws.params.validate_.suite!r} written to {path}")


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
    app.add_typer(expectations_app, name="expectations")
