"""What init decided about a dataset: params entries (each with what was seen) and findings.

The rules every kind shares live here too: row limits (half of what was seen, so a dataset
that shrank to less than half fails validation while one that grew passes), the gate's floor
(the first model must beat always guessing the largest class), the suite's name.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from flywheel.core.config import Params


@dataclass(frozen=True)
class Entry:
    """One params key: ``section`` None for a top-level key; a dotted ``key`` nests
    (``columns.price`` is ``validate: columns: price:``)."""

    section: str | None
    key: str
    value: Any
    comment: str = ""

    @property
    def path(self) -> tuple[str, ...]:
        return (*((self.section,) if self.section else ()), *self.key.split("."))


@dataclass
class Decision:
    task: str
    kind: str
    entries: list[Entry] = field(default_factory=list)
    findings: list[tuple[str, str]] = field(default_factory=list)  # the printed table
    manifest: pd.DataFrame | None = None

    def add(self, section: str | None, key: str, value: Any, comment: str = "") -> None:
        """Set a key; one set before keeps its place (the file reads in decision order)."""
        entry = Entry(section, key, value, comment)
        for i, old in enumerate(self.entries):
            if (old.section, old.key) == (section, key):
                self.entries[i] = entry
                return
        self.entries.append(entry)

    def note(self, section: str | None, key: str, comment: str) -> None:
        """Set the comment of a key decided earlier (what was seen is known later)."""
        for i, old in enumerate(self.entries):
            if (old.section, old.key) == (section, key):
                self.entries[i] = Entry(section, key, old.value, comment)

    def find(self, label: str, text: str) -> None:
        self.findings.append((label, text))

    def raw(self) -> dict[str, Any]:
        """The entries as the nested mapping a params file holds."""
        out: dict[str, Any] = {}
        for entry in self.entries:
            *parents, last = entry.path
            node = out
            for part in parents:
                node = node.setdefault(part, {})
            node[last] = entry.value
        return out


def dataset_name(path: Path) -> str:
    """A name for the params file, suite and registry: the folder's (or file's) own name."""
    return slug(path.name if path.is_dir() else path.stem)


def slug(name: str) -> str:
    """``name`` as a file, suite and folder name: lower case, letters, digits, - and _."""
    return re.sub(r"[^a-z0-9_-]+", "-", name.lower()).strip("-") or "dataset"


def n(value: int) -> str:
    return f"{value:,}"


def add_row_limits(decision: Decision, counts: pd.Series | None, total: int) -> None:
    """``min_rows`` and (for classifiers) ``min_rows_per_class``: half of what was seen."""
    decision.add(
        "validate",
        "min_rows",
        max(1, total // 2),
        f"seen {n(total)} rows: a dataset under half of that fails validation",
    )
    if counts is not None and len(counts):
        smallest = str(counts.idxmin())
        decision.add(
            "validate",
            "min_rows_per_class",
            max(1, int(counts.min()) // 2),
            f"smallest class {smallest!r}: {n(int(counts.min()))} rows; half of that",
        )


def add_gate_floor(decision: Decision, counts: pd.Series) -> None:
    """The first model must beat guessing the largest class by a fifth of the way to 1."""
    share = float(counts.max()) / float(counts.sum())
    floor = math.ceil((share + 0.2 * (1.0 - share)) * 100) / 100
    decision.add(
        "gate",
        "min_accuracy",
        min(floor, 0.99),
        f"largest class is {share:.0%} of rows: beat guessing it; raise once you know more",
    )


def add_labels(decision: Decision, counts: pd.Series, where: str) -> None:
    labels = sorted(str(k) for k in counts.index)
    decision.add("validate", "labels", labels, f"{len(labels)} {where}")
    shown = ", ".join(f"{k} {n(int(counts[k]))}" for k in sorted(counts.index, key=str))
    decision.find("labels", shown)


def add_common(decision: Decision, name: str, data_path: str) -> None:
    """Where the data is, and a registry, feedback inbox and suite of the dataset's own."""
    decision.add(None, "task", decision.task)
    decision.add("data", "path", data_path)
    decision.add("data", "feedback_inbox", f"feedback/{name}", "this dataset's feedback")
    decision.add("paths", "registry", f"registry/{name}", "this dataset's models")
    decision.add("validate", "suite", name, f"expectations/gx/expectations/{name}.json")


def provisional(decision: Decision, **validate: Any) -> Params:
    """The params decided so far (with ``validate`` keys laid over), for the family's own
    reader to build the manifest the suite will check."""
    from flywheel.core.config import merge, parse_params

    return parse_params(merge(decision.raw(), {"validate": validate}), "flywheel init")
