"""The record of one run: which data, what each stage did, what was decided."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flywheel.stages import NAMES as STAGES


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
