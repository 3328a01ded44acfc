"""A table's profile: how it is written, what each column holds, and which task fits.

A column of long, mostly distinct strings is text; one with few distinct values a label or
a category; one whose cells all parse as numbers (with the pipeline's own parser) numeric.
Text beside a label makes a text classifier (MiniLM with ``--task sentiment``); numbers
alone a regressor of the target (``--target``, a column named like one, or the last
numeric column).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from flywheel.core.errors import ConfigError, DataError
from flywheel.core.sections import ColumnRef
from flywheel.datasets.tables import read_table
from flywheel.families.tabular.values import CellError, cell, parse_number
from flywheel.onboard.decision import Decision, n
from flywheel.onboard.scan import KindChoice
from flywheel.onboard.sniff import TableFormat, sniff_table

TEXT_MIN_CHARS = 15  # mean length of a text column
MAX_CATEGORIES = 50
LABEL_NAMES = ("label", "labels", "class", "category", "sentiment", "topic", "y", "target")
TARGET_NAMES = ("target", "y", "price", "value", "label")
NUMERIC_SHARE = 0.95  # of a column's non-blank cells, for it to be numeric


@dataclass(frozen=True)
class Column:
    ref: ColumnRef  # the header name, or the 0-based position of a headerless table
    filled: int
    distinct: int
    numeric: bool
    mean_chars: float

    @property
    def name(self) -> str:
        return str(self.ref)

    @property
    def texty(self) -> bool:
        return (
            not self.numeric
            and self.mean_chars >= TEXT_MIN_CHARS
            and self.distinct >= 0.5 * self.filled
        )

    @property
    def few_values(self) -> bool:
        return 2 <= self.distinct <= min(MAX_CATEGORIES, max(2, self.filled // 2))


def table_format(root: Path, choice: KindChoice) -> TableFormat:
    """One format for every table file; files written differently are refused."""
    files = [root] if root.is_file() else [root / e.rel for e in choice.files]
    formats = {f: sniff_table(f) for f in files}
    kinds = {(t.delimiter, t.header, t.quoting, t.encoding) for t in formats.values()}
    if len(kinds) > 1:
        shown = "; ".join(f"{f.name}: {_describe(t)}" for f, t in list(formats.items())[:3])
        raise DataError(
            f"the tables under {root} are written differently ({shown}): the pipeline reads "
            "them with one set of options; make them alike or give one file"
        )
    return next(iter(formats.values()))


def _describe(fmt: TableFormat) -> str:
    if fmt.format == "parquet":
        return "parquet"
    header = "header" if fmt.header else "no header"
    return f"{fmt.format}, {fmt.delimiter!r}, {header}, quoting {fmt.quoting}, {fmt.encoding}"


def add_format(decision: Decision, fmt: TableFormat, choice: KindChoice, root: Path) -> None:
    """The ``data`` keys that describe how the tables are written (defaults dropped later)."""
    suffixes = {Path(e.rel).suffix.lower() for e in choice.files}
    known = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".parquet": "parquet", ".pq": "parquet"}
    by_suffix = {known.get(s) for s in suffixes} == {fmt.format}
    decision.add("data", "kind", "table", f"{len(choice.files)} table file(s)")
    if choice.pattern:
        decision.add("data", "pattern", choice.pattern, "the tables, not the other files")
    decision.add("data", "format", "auto" if by_suffix else fmt.format, f"sniffed: {fmt.format}")
    standard = {"csv": ",", "tsv": "\t"}.get(fmt.format, "")
    if fmt.delimiter and fmt.delimiter != standard:
        decision.add("data", "delimiter", fmt.delimiter, "sniffed")
    decision.add(
        "data",
        "header",
        fmt.header,
        "sniffed: the first row names the columns"
        if fmt.header
        else "sniffed: the first row is data",
    )
    decision.add(
        "data",
        "quoting",
        fmt.quoting,
        "quote marks are part of the text" if fmt.quoting == "none" else "",
    )
    decision.add("data", "encoding", fmt.encoding, "sniffed")
    files = [e.rel for e in choice.files]
    where = root.name if root.is_file() else f"{root.name}/{files[0]}"
    where += f" and {len(files) - 1} more" if len(files) > 1 else ""
    decision.find("data", f"table ({where}): {_describe(fmt)}")


def read(root: Path, fmt: TableFormat, pattern: str | None) -> pd.DataFrame:
    return read_table(root, fmt.config(pattern))


def describe(table: pd.DataFrame, header: bool) -> list[Column]:
    out = []
    positions = [c for c in table.columns if c not in ("path", "valid_encoding")]
    for pos, name in enumerate(positions):
        values = [cell(v) for v in table[name]]
        filled = [v for v in values if v is not None and str(v).strip()]
        numbers = sum(1 for v in filled if _is_number(v))
        texts = [str(v) for v in filled]
        out.append(
            Column(
                ref=str(name) if header else pos,
                filled=len(filled),
                distinct=len(set(texts)),
                numeric=bool(filled) and numbers >= NUMERIC_SHARE * len(filled),
                mean_chars=sum(map(len, texts)) / len(texts) if texts else 0.0,
            )
        )
    return out


def _is_number(value: object) -> bool:
    try:
        return parse_number(value) is not None
    except CellError:
        return False


def pick(columns: list[Column], ref: str | None, what: str) -> Column:
    """The column ``--target`` names (a header name, or a position for a headerless table)."""
    for column in columns:
        if ref is not None and str(column.ref) == str(ref):
            return column
    raise ConfigError(
        f"--target {ref!r}: the table has no such column (wanted: the {what}); pass one of "
        f"{[c.ref for c in columns]}"
    )


def by_name(columns: list[Column], names: tuple[str, ...]) -> Column | None:
    for wanted in names:
        for column in columns:
            if column.name.lower() == wanted:
                return column
    return None


def rows_text(table: pd.DataFrame, columns: list[Column]) -> str:
    return f"{n(len(table))} rows, {len(columns)} columns"
