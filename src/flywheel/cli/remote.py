"""``flywheel remote ...``: the team's shared object store (``remote.url``)."""

from __future__ import annotations

import json

import typer

from flywheel.cli.common import JsonOpt, ParamsOpt, handled, workspace

remote_app = typer.Typer(help="The team remote (object storage).", no_args_is_help=True)


@remote_app.command("status")
@handled
def remote_status(
    params: ParamsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """What is where: registry versions and production on the remote, what this machine
    lacks, what it holds that is not pushed (data, outputs, run cache)."""
    from flywheel.remote.status import remote_status as report

    out = report(workspace(params))
    if as_json:
        typer.echo(json.dumps(out, indent=2))
        return
    reg, dvc, logged = out["registry"], out["dvc"], out["prediction_log"]
    runs = dvc["run_cache"]
    where = out["url"] + (f" (endpoint {out['endpoint_url']})" if out["endpoint_url"] else "")
    lines = [
        f"remote      {where}",
        f"production  {reg['production'] or 'none'}",
        f"versions    {', '.join(reg['versions']) or 'none'}",
        f"  not here  {', '.join(reg['missing_locally']) or 'none'}",
        f"  only here {', '.join(reg['only_local']) or 'none'}",
        f"dvc         not pushed: {', '.join(dvc['not_pushed']) or 'none'}; "
        f"missing here: {', '.join(dvc['missing_locally']) or 'none'}",
        f"run cache   {runs['remote']} on the remote, {runs['local']} here, "
        f"{runs['not_pushed']} not pushed, {runs['not_pulled']} not pulled",
        f"predictions {logged['chunks']} chunks from {logged['replicas']} replicas on the "
        f"remote; {logged['not_shipped_bytes']} bytes logged here not shipped",
    ]
    typer.echo("\n".join(lines))


def register(app: typer.Typer) -> None:
    app.add_typer(remote_app, name="remote")
