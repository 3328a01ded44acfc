"""What a run shows in the Prefect UI: its name and tags, progress, links and summaries."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast
from uuid import UUID

from prefect import get_client, get_run_logger
from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.runtime import flow_run

from flywheel.core.workspace import Workspace
from flywheel.nn import progress
from flywheel.pipeline.names import dataset_tag, short_hash

# Loggers of the code a stage runs in this process; their lines also go to the task's log.
STAGE_LOGGERS = ("flywheel", "dvc", "lightning.pytorch")


def label_run(data_hash: str, dataset: str, trigger: str) -> None:
    """Name the run after the data it processes and tag it, so the UI lists runs by data."""
    run_id = flow_run.get_id()
    if not run_id:
        return
    tags = sorted({*flow_run.get_tags(), dataset_tag(dataset), f"trigger:{trigger}"})
    try:
        with get_client(sync_client=True) as client:
            client.update_flow_run(UUID(str(run_id)), name=short_hash(data_hash), tags=tags)
    except Exception as err:  # a label is cosmetic; never fail a run over it
        get_run_logger().warning("could not name the run after its data: %s", err)


def _api_url() -> str:
    with get_client(sync_client=True) as client:
        return str(client.api_url)


def _served(url: str) -> bool:
    """Whether a model server answers this very page: it serves this project's Data Docs
    (anything else on the port, another project's server included, does not count)."""
    import httpx

    from flywheel.serving.auth import token_from_env

    token = token_from_env()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        return httpx.head(url, headers=headers, timeout=0.5).status_code == 200
    except httpx.HTTPError:
        return False


def link_data_docs(ws: Workspace) -> None:
    from flywheel.serving import routes_docs

    report = ws.layout.validation_report
    if not report.is_file():
        return
    raw = json.loads(report.read_text())
    docs, page = raw.get("data_docs_path"), raw.get("data_docs_page")
    if not docs:
        return
    serve = ws.params.serve
    served = routes_docs.url(serve.host, serve.port, page)
    if _served(served):
        link, note = served, "served by the model server (flywheel serve / flywheel up)"
    else:
        link = (Path(docs).resolve().parent / (page or "index.html")).as_uri()
        note = f"a file on the flow's machine: start `flywheel serve` to open it at {served}"
    create_link_artifact(
        key="data-docs",
        link=link,
        link_text="Great Expectations Data Docs",
        description=f"This validation, with every expectation and its result; {note}",
    )


def publish_validation(ws: Workspace) -> None:
    """Every expectation (passed or failed, what was observed, rows that broke it) and the
    quarantine, so the run page alone explains a rejected dataset."""
    from flywheel.stages.validate.findings import (
        expectation_rows,
        quarantine_markdown,
        quarantined,
    )
    from flywheel.stages.validate.report import ValidationReport

    if not ws.layout.validation_report.is_file():
        return
    try:
        report = ValidationReport.load(ws.layout.validation_report)
        rows = quarantined(ws.layout.quarantine)
        failed = len(report.failed_expectations())
        create_table_artifact(
            key="validation",
            table=expectation_rows(report, rows),
            description=f"Suite {report.suite}: {len(report.results) - failed} passed, "
            f"{failed} failed; {report.rejected_rows} of {report.total_rows} rows quarantined",
        )
        create_markdown_artifact(
            key="quarantine",
            markdown=quarantine_markdown(report, rows),
            description="Rows held back by validation, and why",
        )
    except Exception as err:  # called while a failure propagates: never replace that error
        get_run_logger().warning("could not publish the validation tables: %s", err)


@contextlib.contextmanager
def training_progress() -> Iterator[UUID]:
    """A progress artifact the train stage moves epoch by epoch (see flywheel.nn.progress)."""
    artifact = cast(
        UUID,
        create_progress_artifact(
            progress=0.0, key=progress.ARTIFACT_KEY, description="waiting for the first epoch"
        ),
    )
    with progress.reporting(artifact, _api_url()):
        yield artifact


def training_cached(artifact: UUID) -> None:
    update_progress_artifact(artifact, 100.0, description="cached: nothing to train")


def publish(summary: str, rows: list[dict[str, Any]]) -> None:
    if rows:
        create_table_artifact(
            key="variants", table=rows, description="Every variant on the test split"
        )
    create_markdown_artifact(
        key="run-summary", markdown=summary, description="Flywheel run summary"
    )


@contextlib.contextmanager
def forwarded_logs(run_logger: Any) -> Iterator[None]:
    """The stage's own log lines (flywheel, DVC, Lightning) also go to the task's run log, so
    the Prefect UI shows what the stage did; they run in this process, under these loggers."""

    class Forward(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            run_logger.log(record.levelno, "%s: %s", record.name, record.getMessage())

    handler = Forward(logging.INFO)
    sources = [logging.getLogger(name) for name in STAGE_LOGGERS]
    ours = logging.getLogger("flywheel")
    level = ours.level
    if ours.getEffectiveLevel() > logging.INFO:
        ours.setLevel(logging.INFO)  # a served run has no logging set up: INFO would be dropped
    for source in sources:
        source.addHandler(handler)
    try:
        yield
    finally:
        for source in sources:
            source.removeHandler(handler)
        ours.setLevel(level)
