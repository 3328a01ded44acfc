"""The markdown summary of one gpu_check run: one line per figure, skips with their reasons."""

from __future__ import annotations

from typing import Any


def _lines(title: str, body: Any) -> list[str]:
    if not isinstance(body, dict):
        return [f"- {title}: {body}"]
    if "error" in body:
        return [f"- {title}: FAILED: {body['error']}"]
    out = [f"### {title}", ""]
    for key, value in body.items():
        if isinstance(value, dict):
            shown = ", ".join(f"{k}={v}" for k, v in value.items() if not isinstance(v, dict))
            out.append(f"- {key}: {shown}")
        else:
            out.append(f"- {key}: {value}")
    return [*out, ""]


def markdown(results: dict[str, Any]) -> str:
    lines = ["# GPU check", "", f"started {results.get('started')}", ""]
    for name in ("machine", "pipeline", "training", "inference", "share_of_peak", "pytest_gpu"):
        if name in results:
            lines += _lines(name, results[name])
    skipped = results.get("skipped") or {}
    if skipped:
        lines += ["### skipped", ""] + [f"- {k}: {v}" for k, v in skipped.items()] + [""]
    return "\n".join(lines) + "\n"
