"""The validate stage's verdict, as plain JSON that needs no Great Expectations to read.

Each entry of ``results`` describes one expectation of the suite, in suite order::

    {
        "expectation": "expect_column_values_to_be_in_set(label)",
        "type": "expect_column_values_to_be_in_set",
        "column": "label",            # None for table-level expectations
        "kwargs": {...},              # the expectation's arguments, batch id removed
        "success": false,
        "unexpected_count": 3,        # None where the expectation has no such notion
        "unexpected_sample": [...],   # at most SAMPLE_SIZE offending values
        "missing_sample": [...],      # expected values absent from the data (set checks)
        "observed_value": ...,        # e.g. the row count of the row-count check
        "exception": None,            # the error text when GX raised while evaluating it
    }

``validated_at`` is the only timestamp: the rest is a pure function of data and suite, so
two reports of the same data differ in that field alone.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

SAMPLE_SIZE = 10


@dataclass(frozen=True)
class ValidationReport:
    suite: str
    success: bool
    results: list[dict[str, Any]]
    total_rows: int
    rejected_rows: int
    quarantine_path: str
    data_docs_path: str | None = None
    validated_at: str = ""
    # This validation's page, relative to the Data Docs site (the folder of index.html).
    data_docs_page: str | None = None

    def failed_expectations(self) -> list[str]:
        return [r["expectation"] for r in self.results if not r["success"]]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    def save(self, path: Path | str) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(self.to_json())
        # Atomic so a reader never sees half a report after a crash.
        tmp.replace(path)
        return path

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ValidationReport:
        return cls(**raw)

    @classmethod
    def load(cls, path: Path | str) -> ValidationReport:
        return cls.from_dict(json.loads(Path(path).read_text()))
