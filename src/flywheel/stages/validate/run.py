"""The validate stage: run the stored suite over the dataset manifest and sort rows.

Rows that break any row-level expectation go to ``quarantine.csv``; the others, and only
those, to ``manifest.csv``, which the preprocess stage reads. All three outputs are written
before a failure is raised, so a failed run can be inspected.

A missing data folder raises :class:`~flywheel.core.errors.DataNotFoundError` (a
:class:`FileNotFoundError`, naming the folder) before anything
is written: there is nothing to validate, and no report could describe the data.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import great_expectations as gx
import pandas as pd
from great_expectations.checkpoint import UpdateDataDocsAction
from great_expectations.core.run_identifier import RunIdentifier
from great_expectations.data_context import AbstractDataContext
from great_expectations.datasource.fluent import PandasDatasource

from flywheel.core.config import Params
from flywheel.core.errors import DataNotFoundError, DataValidationError
from flywheel.core.layout import Layout
from flywheel.families import get_family
from flywheel.stages.validate.report import SAMPLE_SIZE, ValidationReport
from flywheel.stages.validate.suite import load_suite, open_context

_DATASOURCE = "flywheel"
_ASSET = "manifest"
_BATCH = "whole-manifest"
_DOCS_SITE = "local_site"
RESULT_FORMAT = {
    "result_format": "COMPLETE",
    # Identify offending rows by path, not by a DataFrame index that means nothing on disk.
    "unexpected_index_column_names": ["path"],
    "return_unexpected_index_query": False,
}


def validate_dataset(params: Params, layout: Layout) -> ValidationReport:
    """Validate ``layout.data``; raises :class:`DataValidationError` after writing outputs."""
    family = get_family(params.task)
    if not layout.data.exists():
        raise DataNotFoundError(
            f"dataset not found: {os.path.normpath(layout.data)}; put the data there or set "
            "data.path to where it is"
        )
    manifest = family.manifest(params, layout.data)
    context = open_context(layout)
    suite = load_suite(context, params.validate_.suite)
    run_time = dt.datetime.now(dt.UTC)
    with _quiet_docs_renderer():
        result = _checkpoint(context, suite).run(
            batch_parameters={"dataframe": manifest},
            run_id=RunIdentifier(run_time=run_time),
        )
    ((result_key, suite_result),) = result.run_results.items()
    results, offenders = collect_results(suite, suite_result)

    layout.validation_dir.mkdir(parents=True, exist_ok=True)
    rejected = manifest["path"].isin(list(offenders))
    _write_quarantine(manifest[rejected], offenders, layout.quarantine)
    _write_accepted(manifest[~rejected], family.accepted_columns, layout.accepted_manifest)
    report = ValidationReport(
        suite=suite.name,
        success=all(r["success"] for r in results),
        results=results,
        total_rows=len(manifest),
        rejected_rows=int(rejected.sum()),
        quarantine_path=str(layout.quarantine),
        data_docs_path=_docs_index(context),
        validated_at=run_time.isoformat(),
        data_docs_page=_docs_page(context, result_key),
    )
    report.save(layout.validation_report)
    if not report.success:
        raise DataValidationError(report)
    return report


def batch_definition(context: AbstractDataContext) -> Any:
    """The whole-dataframe batch the suite runs on (what exists is reused, which keeps
    great_expectations.yml stable across runs)."""
    try:
        source = context.data_sources.get(_DATASOURCE)
    except KeyError:
        source = None
    if not isinstance(source, PandasDatasource):
        source = context.data_sources.add_or_update_pandas(_DATASOURCE)
    asset = (
        source.get_asset(_ASSET)
        if _ASSET in {a.name for a in source.assets}
        else source.add_dataframe_asset(_ASSET)
    )
    return (
        asset.get_batch_definition(_BATCH)
        if _BATCH in {b.name for b in asset.batch_definitions}
        else asset.add_batch_definition_whole_dataframe(_BATCH)
    )


def _checkpoint(context: AbstractDataContext, suite: gx.ExpectationSuite) -> gx.Checkpoint:
    batch = batch_definition(context)
    definition = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=f"{suite.name}-manifest", data=batch, suite=suite)
    )
    return context.checkpoints.add_or_update(
        gx.Checkpoint(
            name=f"{suite.name}-validate",
            validation_definitions=[definition],
            actions=[UpdateDataDocsAction(name="update-data-docs", site_names=[_DOCS_SITE])],
            result_format=RESULT_FORMAT,
        )
    )


def collect_results(
    suite: gx.ExpectationSuite, suite_result: Any
) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    """Per-expectation summaries in suite order, and ``{path: [failed expectation names]}``."""
    # GX returns results in its own order; the suite's is the one a reader expects.
    position = {e.id: i for i, e in enumerate(suite.expectations)}
    ordered = sorted(
        suite_result.results,
        key=lambda r: position.get(r.expectation_config.id, len(position)),
    )
    summaries: list[dict[str, Any]] = []
    offenders: dict[str, list[str]] = {}
    for res in ordered:
        summary = _summarise(res)
        summaries.append(summary)
        # Every flagged row is quarantined, even when ``mostly`` lets the expectation pass.
        for entry in res.result.get("unexpected_index_list") or []:
            offenders.setdefault(str(entry["path"]), []).append(summary["expectation"])
    return summaries, offenders


def _summarise(res: Any) -> dict[str, Any]:
    config = res.expectation_config
    kwargs = {k: _plain(v) for k, v in config.kwargs.items() if k != "batch_id"}
    column = kwargs.get("column")
    result = res.result or {}
    unexpected = result.get("unexpected_list", result.get("partial_unexpected_list")) or []
    missing = result.get("partial_missing_list") or []
    if config.type.startswith("expect_column_distinct_values"):
        # Distinct-value lists come back in set order; sort so reports are reproducible.
        unexpected, missing = sorted(unexpected, key=str), sorted(missing, key=str)
    exception = _exception_text(res.exception_info)
    return {
        "expectation": f"{config.type}({column})" if column else config.type,
        "type": config.type,
        "column": column,
        "kwargs": kwargs,
        "success": bool(res.success) and exception is None,
        "unexpected_count": _plain(result.get("unexpected_count")),
        "unexpected_sample": [_plain(v) for v in unexpected[:SAMPLE_SIZE]],
        "missing_sample": [_plain(v) for v in missing[:SAMPLE_SIZE]],
        "observed_value": _plain(result.get("observed_value")),
        "exception": exception,
    }


def _exception_text(info: Any) -> str | None:
    """GX reports either one exception or one per failed metric; keep every message once."""
    if not info:
        return None
    entries = [info] if "raised_exception" in info else list(info.values())
    messages = [str(e.get("exception_message")) for e in entries if e.get("raised_exception")]
    return "; ".join(dict.fromkeys(messages)) or None


def _plain(value: Any) -> Any:
    """Numpy scalars and tuples in GX results, as JSON-ready Python values."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    return value


def _write_quarantine(rows: pd.DataFrame, offenders: dict[str, list[str]], path: Path) -> None:
    rows = rows.sort_values("path", kind="stable").copy()
    rows["failed_expectations"] = [";".join(offenders[p]) for p in rows["path"]]
    columns = [*(c for c in rows.columns if c != "failed_expectations"), "failed_expectations"]
    _write_csv(rows.reindex(columns=columns), path)


def _write_accepted(rows: pd.DataFrame, columns: tuple[str, ...], path: Path) -> None:
    accepted = rows.loc[:, list(columns)].sort_values("path", kind="stable")
    _write_csv(accepted, path)


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    # Fixed line endings and no index: the next DVC stage hashes these bytes.
    tmp = path.with_name(path.name + ".tmp")
    frame.to_csv(tmp, index=False, lineterminator="\n")
    tmp.replace(path)


def _docs_index(context: AbstractDataContext) -> str | None:
    sites = context.get_docs_sites_urls(site_name=_DOCS_SITE)
    url = sites[0].get("site_url") if sites else None
    return unquote(urlparse(url).path) if url else None


def _docs_page(context: AbstractDataContext, key: Any) -> str | None:
    """This validation's Data Docs page relative to the site, for links over HTTP."""
    index = _docs_index(context)
    sites = context.get_docs_sites_urls(resource_identifier=key, site_name=_DOCS_SITE)
    url = sites[0].get("site_url") if sites else None
    if not url or not index:
        return None
    page = Path(unquote(urlparse(url).path))
    return page.relative_to(Path(index).parent).as_posix() if page.is_file() else None


@contextmanager
def _quiet_docs_renderer() -> Iterator[None]:
    """Hide one known GX renderer bug while the checkpoint runs.

    GX 1.x's diagnostic renderer reads ``unexpected_percent``, which the distinct-values
    expectations never report, and logs a traceback each time one fails. The Data Docs page
    is still written; only that cell is blank. Other renderer errors still get through.
    """
    logger = logging.getLogger(
        "great_expectations.render.renderer.content_block.validation_results_table_content_block"
    )

    def keep(record: logging.LogRecord) -> bool:
        return "'unexpected_percent'" not in record.getMessage()

    logger.addFilter(keep)
    try:
        yield
    finally:
        logger.removeFilter(keep)


def run(params: Params, layout: Layout) -> dict[str, Any]:
    """The validate stage: :func:`validate_dataset`, summarised for the stage log."""
    report = validate_dataset(params, layout)
    return {"suite": report.suite, "rows": report.total_rows, "rejected": report.rejected_rows}
