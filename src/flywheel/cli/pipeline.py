"""``flywheel run | stage | validate | params``: the pipeline, whole or one stage at a time."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, cast

import typer

from flywheel.cli.common import JsonOpt, ParamsOpt, fail, handled, workspace


def _prefect_env(project: Path) -> None:
    # Runs stay local and quiet unless the user points us at a server of their own.
    os.environ.setdefault("PREFECT_HOME", str(project / ".prefect"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    # Prefect's default start-up wait for its ephemeral server is too short for a busy
    # small machine (the server runs migrations first); a slow start is not a failure.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


@handled
def run(params: ParamsOpt = None, as_json: JsonOpt = False) -> None:
    """Run the whole pipeline once as a Prefect flow (answered at once when nothing changed)."""
    from flywheel.onboard import preflight
    from flywheel.pipeline import steps
    from flywheel.pipeline.summary import record_json, run_text, variant_rows

    ws = workspace(params)
    preflight.check(ws)
    # Without a Prefect server of the user's, a run that would change nothing is answered
    # here, like `make`, rather than after starting an ephemeral Prefect server.
    done = None if os.environ.get("PREFECT_API_URL") else steps.up_to_date(ws)
    result: dict[str, Any]
    if done is not None:
        result = {"record": record_json(done)}
    else:
        _prefect_env(ws.project)
        from flows.pipeline import pipeline

        # A refused run returns its record too (as the data of a Completed "Refused" state).
        result = cast(
            "dict[str, Any]",
            pipeline(params_file=str(ws.params_file), project=str(ws.project)),
        )
    record = json.loads(result["record"])
    record["variants"] = variant_rows(ws, record.get("deploy"))
    typer.echo(json.dumps(record, indent=2) if as_json else run_text(record))
    if record["status"] == "refused":
        # A refusal is an outcome, not a crash, but scripts must be able to tell it apart.
        raise fail(f"gate refused every candidate: {record['deploy']['reason']}", 4)


@handled
def stage(
    name: Annotated[str, typer.Argument(help="validate|preprocess|train|export|compress|evaluate")],
) -> None:
    """Run one pipeline stage in the current workspace (this is what dvc.yaml calls)."""
    from flywheel import stages
    from flywheel.core.workspace import workspace_at

    if name not in stages.NAMES:
        raise fail(f"unknown stage {name!r}; one of {', '.join(stages.NAMES)}", 2)
    ws = workspace_at(Path.cwd())
    result = stages.run(name, ws.params, ws.layout)
    typer.echo(json.dumps(result, indent=2, default=str))


@handled
def validate(params: ParamsOpt = None, as_json: JsonOpt = False) -> None:
    """Validate the dataset against its suite (outside DVC, for a quick check)."""
    from flywheel.onboard import preflight
    from flywheel.stages.validate.run import validate_dataset

    ws = workspace(params)
    preflight.check(ws)
    report = validate_dataset(ws.params, ws.layout)
    typer.echo(
        report.to_json() if as_json else f"ok: {report.total_rows} rows pass suite {report.suite!r}"
    )


@handled
def show_params(params: ParamsOpt = None) -> None:
    """Print the resolved params (every default filled in) and update params.resolved.yaml."""
    ws = workspace(params)
    typer.echo(ws.layout.resolved_params.read_text())


def register(app: typer.Typer) -> None:
    app.command()(run)
    app.command()(stage)
    app.command()(validate)
    app.command("params")(show_params)
