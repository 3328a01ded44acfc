"""The validate stage's report as a person reads it: one row per expectation and a summary
of the quarantine, for the Prefect run page (a rejected dataset explained without opening
any file). Built from ``report.json`` and ``quarantine.csv`` alone, with the standard
library: the flow's process imports neither Great Expectations nor pandas.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from flywheel.stages.validate.report import ValidationReport

EXAMPLES = 3  # rows (or values) shown per expectation
QUARANTINE_ROWS = 10  # rows shown in the quarantine summary
_SHOWN_CHARS = 60


def quarantined(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _short(value: Any) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."


def _observed(result: dict[str, Any], total: int) -> str:
    count = result.get("unexpected_count")
    if result.get("exception"):
        return f"error: {_short(result['exception'])}"
    if count is not None and result.get("observed_value") is None:
        return f"{count} of {total} rows unexpected"
    observed = result.get("observed_value")
    if isinstance(observed, list):
        return _short(", ".join(map(str, observed)))
    return "" if observed is None else _short(observed)


def _examples(result: dict[str, Any], rows: list[dict[str, str]]) -> str:
    name, column = result["expectation"], result.get("column")
    flagged = [r for r in rows if name in r.get("failed_expectations", "").split(";")]
    shown = [
        f"{r['path']} ({column}={_short(r.get(column, ''))})" if column in r else r["path"]
        for r in flagged[:EXAMPLES]
    ]
    if not shown and result.get("unexpected_sample"):
        shown = [_short(v) for v in result["unexpected_sample"][:EXAMPLES]]
    if result.get("missing_sample"):
        shown.append("missing: " + ", ".join(map(str, result["missing_sample"][:EXAMPLES])))
    return "; ".join(shown)


def expectation_rows(report: ValidationReport, rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """One row per expectation in suite order: passed or FAILED, what GX observed, and a few
    of the rows (path and value) or values that broke it."""
    return [
        {
            "expectation": r["expectation"],
            "result": "passed" if r["success"] else "FAILED",
            "observed": _observed(r, report.total_rows),
            "examples": _examples(r, rows),
        }
        for r in report.results
    ]


def quarantine_markdown(report: ValidationReport, rows: list[dict[str, str]]) -> str:
    """How many rows were held back and why, and the first of them."""
    failed = report.failed_expectations()
    verdict = (
        f"**Rejected**: {len(failed)} of {len(report.results)} expectations failed "
        f"({', '.join(failed)})."
        if failed
        else f"**Accepted**: all {len(report.results)} expectations passed."
    )
    lines = [
        f"# Validation of suite `{report.suite}`",
        "",
        verdict,
        "",
        f"{report.rejected_rows} of {report.total_rows} rows quarantined "
        f"(`{report.quarantine_path}`); the others go on to training."
        if report.rejected_rows
        else f"No row quarantined out of {report.total_rows}.",
    ]
    counts: dict[str, int] = {}
    for row in rows:
        for name in filter(None, row.get("failed_expectations", "").split(";")):
            counts[name] = counts.get(name, 0) + 1
    if counts:
        lines += ["", "| expectation | rows |", "|---|---|"]
        lines += [f"| `{k}` | {v} |" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])]
    if rows:
        lines += ["", f"First {min(len(rows), QUARANTINE_ROWS)} quarantined rows:", ""]
        lines += ["| path | failed |", "|---|---|"]
        lines += [
            f"| `{r['path']}` | {r.get('failed_expectations', '').replace(';', ', ')} |"
            for r in rows[:QUARANTINE_ROWS]
        ]
    return "\n".join(lines) + "\n"
