"""What a run reports: the variant table, the markdown summary, the JSON record.

Read by the flow (Prefect artifacts), the CLI (``flywheel run``) and tests alike.
"""

from __future__ import annotations

import json
from typing import Any

from flywheel.core.errors import FlywheelError
from flywheel.core.workspace import Workspace
from flywheel.pipeline.record import RunRecord
from flywheel.release.deploy import DeployRefused, load_evaluation


def refusal(refused: DeployRefused) -> dict[str, Any]:
    """A gate refusal as a deploy outcome: production unchanged, every candidate's checks."""
    against = f"production {refused.production}" if refused.production else "the gate's bounds"
    tried = [t for t in refused.trials if t.result is not None]
    reasons = "; ".join(f"{t.variant}: {t.verdict.removeprefix('refused: ')}" for t in tried)
    return {
        "status": "refused",
        "version": refused.production,
        "reason": f"no candidate passed the gate against {against} ({reasons})",
        "gate": refused.result.as_dict(),
        "trials": [t.as_dict() for t in refused.trials],
    }


def _gate_verdicts(deploy: dict[str, Any] | None, report: dict[str, Any]) -> dict[str, str]:
    """Each ranked variant's fate at the gate, for the table's ``gate`` column."""
    if not deploy:
        return {}
    out = {str(t["variant"]): str(t["verdict"]) for t in deploy.get("trials") or []}
    status, version = deploy.get("status"), deploy.get("version")
    rest = [str(n) for n in report.get("ranking") or [] if n not in out]
    if status == "unchanged" and not out:
        # The deploy tries nothing when production is one of this run's candidates.
        live = deploy.get("variant")
        if live in rest:
            rest.remove(live)
            out[live] = f"is production ({version}): nothing to deploy"
    for name in rest:
        out[name] = "not tried: " + (
            "production is one of this run's candidates"
            if status == "unchanged"
            else "ranked below the chosen variant"
        )
    if status == "deployed":
        chosen = next((k for k, v in out.items() if v.startswith("chosen")), None)
        if chosen:
            out[chosen] = f"deployed as {version}: the best-ranked variant that passed the gate"
    return out


def variant_rows(ws: Workspace, deploy: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The evaluation table, with each variant's gate verdict when ``deploy`` (the run's
    deploy outcome) is given."""
    report = load_evaluation(ws)
    metric = str(report["metric"])
    gate = _gate_verdicts(deploy, report)
    rows = []
    for name, v in report["variants"].items():
        rows.append(
            {
                "variant": name,
                "winner": name == report["winner"],
                metric: round(float(v["score"]), 4),
                "size_kb": round(int(v["size_bytes"]) / 1024, 1),
                "p50_ms_batch1": round(float(v["latency_p50_ms"]), 4),
                "p99_ms_batch1": round(float(v["latency_p99_ms"]), 4),
                "throughput_per_s_batch64": round(float(v["throughput_per_s"]), 1),
                # Why it won or lost (the compression search's verdict), when recorded.
                "verdict": str(v.get("verdict", "")),
                "gate": gate.get(name, "not a candidate" if gate else ""),
            }
        )
    eager = report.get("torch_eager")
    if eager:
        rows.append(
            {
                "variant": "pytorch-eager (reference)",
                "winner": False,
                metric: round(float(eager["score"]), 4),
                "size_kb": round(int(eager.get("size_bytes", 0)) / 1024, 1),
                "p50_ms_batch1": round(float(eager["latency_p50_ms"]), 4),
                "p99_ms_batch1": round(float(eager["latency_p99_ms"]), 4),
                "throughput_per_s_batch64": round(
                    float(eager.get("throughput_per_s", float("nan"))), 1
                ),
                "verdict": "baseline: what the variants are compared with",
                "gate": "",
            }
        )
    return rows


def summary_markdown(
    record: RunRecord, rows: list[dict[str, Any]], feedback: dict[str, int] | None = None
) -> str:
    lines = [
        f"# Flywheel run: {record.workspace} @ data {record.data.short}",
        "",
        f"- data hash: `{record.data.hash}`"
        + (f" (versioned by `{record.data.dvc_file}`)" if record.data.dvc_file else ""),
        f"- status: **{record.status}**",
        *(
            [
                f"- from production feedback: {feedback['feedback_records']} records in the data, "
                f"{feedback['feedback_train_rows']} training rows"
            ]
            if feedback
            else []
        ),
        "",
        "## Stages",
        "",
        "| stage | ran | seconds |",
        "|---|---|---|",
    ]
    lines += [
        f"| {n} | {'yes' if s['ran'] else 'cached'} | {s['seconds']} |"
        for n, s in record.stages.items()
    ]
    if rows:
        lines += ["", "## Variants (test split)", ""]
        header = list(rows[0])
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(str(r[h]) for h in header) + " |" for r in rows]
    if record.deploy:
        lines += ["", "## Decision", "", f"- {record.deploy['status']}: {record.deploy['reason']}"]
        lines += _gate_lines(record.deploy, "  - ", "`")
    return "\n".join(lines) + "\n"


def _gate_lines(deploy: dict[str, Any], indent: str, quote: str = "") -> list[str]:
    """The gate's checks of the deployed candidate, or of every refused one."""
    trials = [t for t in deploy.get("trials") or [] if t.get("result")]
    if deploy.get("status") != "refused" or not trials:
        trials = [{"variant": None, "result": deploy["gate"]}] if deploy.get("gate") else []
    lines = []
    for trial in trials:
        if trial["variant"]:
            lines.append(f"{indent}{quote}{trial['variant']}{quote}:")
        for check in trial["result"]["checks"]:
            mark = "pass" if check["passed"] else "FAIL"
            lines.append(f"{indent}  {mark} {quote}{check['name']}{quote}: {check['detail']}")
    return lines


def failure_reason(err: BaseException) -> str:
    if isinstance(err, FlywheelError):
        return str(err)
    return f"{type(err).__name__}: {err}"


def record_json(record: RunRecord) -> str:
    return json.dumps(
        {
            "workspace": record.workspace,
            "data_hash": record.data.hash,
            "data_dvc_file": record.data.dvc_file,
            "status": record.status,
            "nothing_to_do": record.nothing_to_do,
            "stages": record.stages,
            "deploy": record.deploy,
        },
        indent=2,
        default=str,
    )


_ROW_KEYS = {
    "variant",
    "winner",
    "gate",
    "size_kb",
    "p50_ms_batch1",
    "p99_ms_batch1",
    "throughput_per_s_batch64",
}


def _variant_lines(variants: list[dict[str, Any]]) -> list[str]:
    metric = next(k for k in variants[0] if k not in _ROW_KEYS and k != "verdict")
    lines = [f"  {'variant':<26}{metric:>9}{'size KB':>9}{'p50 ms':>9}{'rows/s@64':>10}"]
    for v in variants:
        mark = "*" if v["winner"] else " "
        lines.append(
            f" {mark}{v['variant']:<26}{v[metric]:>9.4f}{v['size_kb']:>9.1f}"
            f"{v['p50_ms_batch1']:>9.4f}{v['throughput_per_s_batch64']:>10.0f}"
            + (f"  {v['gate']}" if v.get("gate") else "")
        )
    return lines


def run_text(record: dict[str, Any]) -> str:
    """The terminal report of a run record (``flywheel run``)."""
    lines = [f"data hash: {record['data_hash']}"]
    for name, s in record["stages"].items():
        lines.append(f"  stage {name:<10} {'ran' if s['ran'] else 'cached':<7} {s['seconds']}s")
    deploy = record.get("deploy") or {}
    if record.get("variants"):
        lines += _variant_lines(record["variants"])
    lines.append(f"decision: {deploy.get('status')} ({deploy.get('reason')})")
    if deploy:
        lines += _gate_lines(deploy, "  ")
    lines.append(f"production: {deploy.get('version')}")
    if record.get("nothing_to_do"):
        lines.append(
            "nothing to do: data and params unchanged, every stage cached, nothing deployed"
        )
    return "\n".join(lines)
