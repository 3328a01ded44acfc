"""``flywheel init DATA``: look at a dataset, write its params file and suite, say what next."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from flywheel.cli.common import echo, handled

# The printed table's rows, in reading order.
_ORDER = (
    "data",
    "columns",
    "roles",
    "unused",
    "task",
    "labels",
    "images",
    "text",
    "encoding",
    "left out",
    "quarantined",
    "quarantine",
)


@handled
def init(
    data: Annotated[
        Path, typer.Argument(help="An image folder, text folder, table or folder of tables.")
    ],
    task: Annotated[
        str | None,
        typer.Option(
            help="image_classification | text_classification | sentiment | "
            "tabular_regression (default: decided from the data)."
        ),
    ] = None,
    params: Annotated[
        Path | None,
        typer.Option(
            "--params", "-p", help="Where to write the params (default params/<name>.yaml)."
        ),
    ] = None,
    target: Annotated[
        str | None,
        typer.Option(
            help="The column to predict: a label or a numeric target (name, or 0-based position)."
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(help="Name for the suite, registry and params file (default: the data's)."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace files that differ.")] = False,
) -> None:
    """Decide the data kind, task, labels and checks; write a minimal params file and suite."""
    from flywheel.core.workspace import find_project
    from flywheel.onboard.run import run_init

    result = run_init(
        data,
        project=find_project(),
        task=task,
        params_file=params,
        target=target,
        name=name,
        force=force,
    )
    findings = sorted(
        result.decision.findings,
        key=lambda f: _ORDER.index(f[0]) if f[0] in _ORDER else len(_ORDER),
    )
    width = max(len(label) for label, _ in findings)
    for label, text in findings:
        echo(f"  {label.ljust(width)}  {text}")
    shown = os.path.relpath(result.params_file)
    suite = f"suite {result.params.validate_.suite!r} ({os.path.relpath(result.suite_file)})"
    echo(f"{'wrote' if result.written else 'unchanged:'} {shown} and {suite}")
    # Relative to where the user is, so the line runs as printed.
    echo(f"next: flywheel validate --params {shown} && flywheel run --params {shown}")


def register(app: typer.Typer) -> None:
    app.command()(init)
