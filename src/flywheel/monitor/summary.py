"""A monitor report as the Prefect UI shows it: a table of the tests and a markdown page."""

from __future__ import annotations

from typing import Any


def table_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "feature": row["feature"],
            "test": row["test"],
            "statistic": row["statistic"],
            "p_value": row["p_value"],
            "psi": row["psi"],
            "drifted": row["drifted"],
            "reference_n": row["reference_n"],
            "window_n": row["current_n"],
        }
        for row in report.get("features", [])
    ]


def _fmt(value: Any) -> str:
    return "n/a" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# Monitor: {report['dataset']} / model {report.get('model_version') or 'none'}",
        "",
        f"- verdict: **{report.get('verdict')}**",
        f"- window: {report.get('window', 0)} logged predictions",
        f"- drift share: {_fmt(report.get('drift_share'))} (threshold {report['threshold']})",
        f"- drifted: {', '.join(report.get('drifted_features') or []) or 'none'}",
        f"- live accuracy: {_fmt(report.get('live_accuracy'))}, live MAE: "
        f"{_fmt(report.get('live_mae'))} ({report.get('feedback_in_window', 0)} feedback)",
    ]
    rows = table_rows(report)
    if rows:
        header = list(rows[0])
        lines += ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(_fmt(r[h]) for h in header) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def event_payload(report: dict[str, Any]) -> dict[str, Any]:
    return {
        "drift_share": report["drift_share"],
        "drifted_features": report.get("drifted_features", []),
        "window": report.get("window"),
        "threshold": report["threshold"],
    }
