"""``flywheel feedback list | show | accept | reject``: reviewing what production sent back."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from flywheel.cli.common import JsonOpt, ParamsOpt, echo, handled, workspace

feedback_app = typer.Typer(help="Review production feedback into the data.", no_args_is_help=True)
IdsArg = Annotated[list[str] | None, typer.Argument(help="Record ids (from `feedback list`).")]
AllOpt = Annotated[bool, typer.Option("--all", help="Every record in the inbox.")]


def _inbox(params: Any) -> tuple[Any, Any]:
    from flywheel.feedback.inbox import open_inbox

    ws = workspace(params)
    return ws, open_inbox(ws)


@feedback_app.command("list")
@handled
def feedback_list(params: ParamsOpt = None, as_json: JsonOpt = False) -> None:
    """Records waiting in the inbox (and those that failed the suite, with why)."""
    _, inbox = _inbox(params)
    rows = [r.summary() for r in inbox.records()]
    if as_json:
        echo(json.dumps(rows, indent=2))
        return
    if not rows:
        echo("the feedback inbox is empty")
    for row in rows:
        failed = f"  failed: {', '.join(row['failed'])}" if row["failed"] else ""
        echo(f"{row['id']}  {row['status']:<8}{row['label']!s:<12}{row['model_version']}{failed}")


@feedback_app.command("show")
@handled
def feedback_show(record_id: str, params: ParamsOpt = None) -> None:
    """One record's sidecar as JSON."""
    _, inbox = _inbox(params)
    (record,) = inbox.select([record_id], everything=False)
    echo(json.dumps(record.meta, indent=2))


@feedback_app.command("accept")
@handled
def feedback_accept(
    ids: IdsArg = None,
    everything: AllOpt = False,
    params: ParamsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Check records with the dataset's suite together with the current data; merge those
    that pass as new data files (a new DVC data version); keep the others, with why."""
    from flywheel.feedback.review import accept

    ws, inbox = _inbox(params)
    outcome = accept(ws, inbox.select(list(ids or []), everything))
    if as_json:
        echo(json.dumps(outcome.as_dict(), indent=2))
        return
    echo(f"accepted {len(outcome.accepted)}, failed {len(outcome.failed)}")
    for record_id, failed in outcome.failed.items():
        echo(f"  {record_id} stays in the inbox: {', '.join(failed)}")
    if outcome.data_hash:
        echo(f"data version {outcome.data_hash[:8]} ({outcome.dvc_file or 'outside the project'})")


@feedback_app.command("reject")
@handled
def feedback_reject(
    ids: IdsArg = None,
    everything: AllOpt = False,
    reason: Annotated[str, typer.Option(help="Kept in the review journal.")] = "",
    params: ParamsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Remove records from the inbox without merging them."""
    from flywheel.feedback.review import reject

    ws, inbox = _inbox(params)
    removed = reject(ws, inbox.select(list(ids or []), everything), reason)
    echo(json.dumps({"rejected": removed}) if as_json else f"rejected {len(removed)}")


def register(app: typer.Typer) -> None:
    app.add_typer(feedback_app, name="feedback")
