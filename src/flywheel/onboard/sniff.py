"""A table's format, delimiter, header, quoting and encoding, read from its bytes.

The delimiter comes from :class:`csv.Sniffer` (the standard library's maintained sniffer);
its ``has_header`` guess is used only where the columns' types cannot decide it (a column
of numbers under a word is a header; all-text columns leave it to the sniffer). Quoting is
decided by parsing the file both ways with the pipeline's own reader: quote marks inside
unquoted sentences make a quoting parse swallow lines or fail, which parsing with quoting
off does not.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from flywheel.core.errors import DataError
from flywheel.core.sections import DataConfig
from flywheel.datasets.tables import TableError, read_one

SAMPLE_BYTES = 256 * 1024
SNIFF_LINES = 50
DELIMITERS = "\t,;|"
# Share of a table's records that have its most common width (a stray line may not).
WIDTH_AGREEMENT = 0.9


@dataclass(frozen=True)
class Encoding:
    name: str  # what data.encoding should say
    not_utf8: tuple[int, ...] = ()  # indexes of the blobs that are not UTF-8 (kept: quarantined)


def guess_encoding(blobs: Sequence[bytes]) -> Encoding:
    """UTF-8 when every blob is UTF-8. When none that is UTF-8 holds a non-ASCII byte (so
    none needs UTF-8), the Windows/Latin-1 code page that reads them all. Otherwise UTF-8,
    and the other blobs are named: one encoding cannot read both, so they are quarantined."""
    bad = [i for i, b in enumerate(blobs) if not _decodes(b, "utf-8")]
    if not bad:
        return Encoding(
            "utf-8-sig" if blobs and all(b.startswith(b"\xef\xbb\xbf") for b in blobs) else "utf-8"
        )
    needs_utf8 = any(not b.isascii() for i, b in enumerate(blobs) if i not in set(bad))
    if not needs_utf8:
        return Encoding("cp1252" if all(_decodes(b, "cp1252") for b in blobs) else "latin-1")
    return Encoding("utf-8", tuple(bad))


def _decodes(blob: bytes, encoding: str) -> bool:
    try:
        blob.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


def is_binary(sample: bytes) -> bool:
    return b"\x00" in sample


@dataclass(frozen=True)
class TableFormat:
    format: str  # csv | tsv | parquet
    delimiter: str
    header: bool
    quoting: str  # minimal | none
    encoding: str
    columns: int

    def config(self, pattern: str | None = None) -> DataConfig:
        return DataConfig(
            kind="table",
            format=self.format,  # type: ignore[arg-type]
            delimiter=self.delimiter or None,
            header=self.header,
            quoting=self.quoting,  # type: ignore[arg-type]
            encoding=self.encoding,
            pattern=pattern,
        )


def sniff_table(path: Path) -> TableFormat:
    """How ``path`` is written; :class:`DataError` when it is not a table of 2+ columns."""
    data = path.read_bytes()
    if data.startswith(b"PAR1"):
        columns = pd.read_parquet(path).shape[1]
        return _checked(path, TableFormat("parquet", "", True, "minimal", "utf-8", columns))
    if is_binary(data[:SAMPLE_BYTES]):
        raise DataError(
            f"{path} is a binary file, neither text nor Parquet: give an image folder, a "
            "text folder or a CSV/TSV/Parquet table"
        )
    encoding = guess_encoding([data]).name
    text = data[:SAMPLE_BYTES].decode(encoding, "replace").lstrip("\ufeff")
    lines = [line for line in text.splitlines()[:SNIFF_LINES] if line.strip()]
    if not lines:
        raise DataError(f"{path} holds no text: a table needs a header or rows of values")
    delimiter = _delimiter(path, text, len(data) > SAMPLE_BYTES)
    header = _header(lines, delimiter)
    fmt = "tsv" if delimiter == "\t" else "csv"
    quoting = _quoting(path, TableFormat(fmt, delimiter, header, "minimal", encoding, 0))
    parsed = read_one(path, TableFormat(fmt, delimiter, header, quoting, encoding, 0).config())
    return _checked(path, TableFormat(fmt, delimiter, header, quoting, encoding, parsed.shape[1]))


def table_shape(path: Path) -> tuple[str, int] | None:
    """A ``.txt`` file's delimiter and width when it is a delimited table, else None (for
    folders of such files: the tables are the files that share the commonest shape)."""
    try:
        fmt = sniff_table(path)
    except (DataError, TableError, OSError):
        return None
    return (fmt.delimiter, fmt.columns)


def _checked(path: Path, fmt: TableFormat) -> TableFormat:
    if fmt.columns < 2:
        raise DataError(
            f"{path} has {fmt.columns} column: a dataset needs an input (text or features) "
            "and a label or target column"
        )
    return fmt


def _widths(text: str, delimiter: str, truncated: bool) -> Counter[int]:
    records = [r for r in csv.reader(io.StringIO(text), delimiter=delimiter) if any(r)]
    # The sample's last record may be cut short when the file is longer than the sample.
    records = records[:-1] if truncated and len(records) > 1 else records
    return Counter(len(r) for r in records[: SNIFF_LINES * 4])


def _agreement(widths: Counter[int]) -> tuple[float, int]:
    width, count = widths.most_common(1)[0]
    return count / sum(widths.values()), width


def _delimiter(path: Path, text: str, truncated: bool) -> str:
    """The delimiter that splits every record into the same number (2+) of fields; among
    equals, :class:`csv.Sniffer`'s choice. Prose splits unevenly on every candidate."""
    try:
        sniffed = csv.Sniffer().sniff(text[: SAMPLE_BYTES // 4], delimiters=DELIMITERS).delimiter
    except csv.Error:
        sniffed = "\t" if path.suffix.lower() in (".tsv", ".tab") else ","
    scores = {d: _agreement(_widths(text, d, truncated)) for d in DELIMITERS}
    tables = {d: share for d, (share, width) in scores.items() if width >= 2}
    if not tables:
        return sniffed  # one column: refused by _checked, with that message
    best = max(tables.values())
    if best < WIDTH_AGREEMENT:
        raise DataError(
            f"{path} is not a table: its lines split into different numbers of fields on "
            "every delimiter tried (comma, tab, semicolon, bar)"
        )
    return (
        sniffed
        if tables.get(sniffed) == best
        else next(d for d in DELIMITERS if tables.get(d) == best)
    )


def _header(lines: list[str], delimiter: str) -> bool:
    rows = list(csv.reader(lines, delimiter=delimiter))
    if len(rows) < 2:
        return True
    first, rest = rows[0], rows[1:]
    width = len(first)
    for col in range(width):
        below = [r[col] for r in rest if len(r) == width and r[col].strip()]
        if below and all(_number(v) for v in below):
            # Numbers under this cell: a header names them, a data row is a number too.
            return not _number(first[col])
    try:
        return csv.Sniffer().has_header("\n".join(lines))
    except csv.Error:
        return True


def _number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _quoting(path: Path, fmt: TableFormat) -> str:
    """``none`` when quote marks are text here: parsing with quoting then fails or reads
    fewer rows than parsing without it does, with every row the same width."""
    try:
        quoted = len(read_one(path, fmt.config()))
    except TableError:
        quoted = -1
    plain_cfg = TableFormat(fmt.format, fmt.delimiter, fmt.header, "none", fmt.encoding, 0)
    try:
        plain = len(read_one(path, plain_cfg.config()))
    except TableError:
        return "minimal"
    return "none" if quoted < plain else "minimal"
