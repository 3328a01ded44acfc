"""What the Prefect flow calls: each function is one step of a run, with no Prefect in it.

Keeping the steps here keeps ``flows/`` to orchestration (retries, schedules, artifacts)
and lets tests and benchmarks call the same steps directly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flywheel import dvc_ops
from flywheel.deploy import DeployOutcome, deploy, load_evaluation
from flywheel.errors import FlywheelError
from flywheel.registry import Registry
from flywheel.registry.card import sha256_file
from flywheel.workspace import Workspace, open_workspace

STAGES = dvc_ops.STAGES
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (dvc_ops.DvcBusy, TimeoutError)


@dataclass(frozen=True)
class DataVersion:
    hash: str
    dvc_file: str | None

    @property
    def short(self) -> str:
        return self.hash.removesuffix(".dir")[:8]


@dataclass
class RunRecord:
    """What one run did, for the summary artifact and the CLI's report."""

    workspace: str
    data: DataVersion
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    deploy: dict[str, Any] | None = None
    status: str = "running"

    @classmethod
    def unchanged(cls, workspace: str, data: DataVersion, version: str, reason: str) -> RunRecord:
        """A run that found its model already registered and every stage cached."""
        return cls(
            workspace=workspace,
            data=data,
            stages={s: {"ran": False, "seconds": 0.0} for s in STAGES},
            deploy={"status": "unchanged", "version": version, "reason": reason, "gate": None},
            status="nothing to do",
        )

    @property
    def nothing_to_do(self) -> bool:
        return (
            not any(s["ran"] for s in self.stages.values())
            and (self.deploy or {}).get("status") == "unchanged"
        )


def prepare(params_file: str | None, project: str | None) -> Workspace:
    return open_workspace(params_file, Path(project) if project else None)


def snapshot(ws: Workspace) -> DataVersion:
    digest, dvc_file = dvc_ops.snapshot_data(ws.project, ws.layout.data)
    return DataVersion(digest, str(dvc_file.relative_to(ws.project)) if dvc_file else None)


def up_to_date(ws: Workspace) -> RunRecord | None:
    """What a run would report without running one, when it would change nothing: the data
    is the version DVC records, every stage is cached and the evaluated winner is already
    registered. None when anything is left to do (or to check)."""
    recorded = dvc_ops.recorded_version(ws.project, ws.layout.data)
    if recorded is None or not ws.layout.evaluation_report.is_file() or changed_stages(ws):
        return None
    winner = str(load_evaluation(ws)["winner"])
    known = Registry(ws.layout.registry).registered(sha256_file(ws.layout.variant_file(winner)))
    if known is None:
        return None
    card, why = known
    digest, dvc_file = recorded
    data = DataVersion(digest, str(dvc_file.relative_to(ws.project)) if dvc_file else None)
    reason = f"candidate {winner} is {card.version}, {why}"
    return RunRecord.unchanged(ws.name, data, card.version, reason)


def changed_stages(ws: Workspace) -> set[str]:
    return dvc_ops.changed_stages(ws.root)


def run_stage(ws: Workspace, stage: str) -> dvc_ops.StageRun:
    """Reproduce one stage through DVC, its body (what ``flywheel stage <name>`` runs) in this
    process; a failing ``validate`` raises the typed :class:`DataValidationError`."""
    from flywheel import stages

    return dvc_ops.reproduce(ws.root, stage, lambda: stages.run_stage(stage, ws.root))


def gate_and_deploy(ws: Workspace, data: DataVersion, run: dict[str, Any]) -> DeployOutcome:
    return deploy(ws, data.hash, run)


def variant_rows(ws: Workspace) -> list[dict[str, Any]]:
    report = load_evaluation(ws)
    metric = str(report["metric"])
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
            }
        )
    return rows


def summary_markdown(record: RunRecord, rows: list[dict[str, Any]]) -> str:
    lines = [
        f"# Flywheel run: {record.workspace} @ data {record.data.short}",
        "",
        f"- data hash: `{record.data.hash}`"
        + (f" (versioned by `{record.data.dvc_file}`)" if record.data.dvc_file else ""),
        f"- status: **{record.status}**",
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
        gate = record.deploy.get("gate")
        if gate:
            for check in gate["checks"]:
                mark = "pass" if check["passed"] else "FAIL"
                lines.append(f"  - {mark} `{check['name']}`: {check['detail']}")
    return "\n".join(lines) + "\n"


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
