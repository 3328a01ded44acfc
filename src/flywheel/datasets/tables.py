"""Reading tabular files (CSV, TSV, Parquet; one file or a folder of them) as configured.

Bytes that are not valid in the configured encoding never crash the reader: they are kept
as surrogate escapes and reported per row in ``valid_encoding``, so validation can reject
the row by name instead of the pipeline dying on a ``UnicodeDecodeError``.
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from flywheel.core.errors import ConfigError, DataNotFoundError
from flywheel.core.sections import ColumnRef, DataConfig

# pandas is imported where a table is read: listing table files (which the deploy and the
# answer to an unchanged `flywheel run` need) should not cost its import.
if TYPE_CHECKING:
    import pandas as pd

_SUFFIX_FORMAT = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
}
_SURROGATE = re.compile(r"[\udc80-\udcff]")


class TableError(ConfigError, ValueError):
    """A table cannot be read as configured; the message names the file and the option to
    change (a params problem: the data may be fine, the ``data`` keys do not describe it)."""


def one_line(err: BaseException) -> str:
    """A library's error message (pandas' often span lines) as one line."""
    return " ".join(str(err).split())


def shown(path: Path) -> str:
    """A path as a message shows it: a workspace's ``../../..`` folded away."""
    return os.path.normpath(path)


def table_files(path: Path, pattern: str | None = None) -> list[Path]:
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DataNotFoundError(
            f"dataset not found: {shown(path)}; set data.path to the table or folder"
        )
    if pattern:
        files = sorted(p for p in path.rglob(pattern) if p.is_file())
    else:
        files = sorted(
            p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in _SUFFIX_FORMAT
        )
    if not files:
        raise TableError(
            f"no table files matching {pattern or '*.csv|*.tsv|*.parquet'} under {shown(path)}: "
            "for one sub-folder per label set data.kind to text_folder or image_folder, "
            "else data.pattern to the files' glob (`flywheel init DATA` works both out)"
        )
    return files


def _format(path: Path, cfg: DataConfig) -> str:
    if cfg.format != "auto":
        return cfg.format
    try:
        return _SUFFIX_FORMAT[path.suffix.lower()]
    except KeyError:
        raise TableError(
            f"{path}: cannot tell the format from the suffix {path.suffix!r}; "
            "set data.format to csv, tsv or parquet"
        ) from None


def read_one(path: Path, cfg: DataConfig) -> pd.DataFrame:
    import pandas as pd

    fmt = _format(path, cfg)
    if fmt == "parquet":
        try:
            frame = pd.read_parquet(path)
        except Exception as err:
            raise TableError(
                f"{path}: not a readable Parquet file ({one_line(err)}); "
                "set data.format if it is CSV or TSV"
            ) from None
        if not cfg.header:
            frame.columns = range(frame.shape[1])
        return frame
    delimiter = cfg.delimiter or ("\t" if fmt == "tsv" else ",")
    try:
        frame = pd.read_csv(
            path,
            sep=delimiter,
            header=0 if cfg.header else None,
            quoting=csv.QUOTE_NONE if cfg.quoting == "none" else csv.QUOTE_MINIMAL,
            encoding=cfg.encoding,
            encoding_errors="surrogateescape",
            # object, not str: pandas 3's str dtype cannot hold the surrogate escapes.
            dtype=object,
            keep_default_na=False,
            na_values=[""],
            engine="python" if cfg.quoting == "none" else "c",
            on_bad_lines="error",
        )
    except (pd.errors.ParserError, csv.Error, UnicodeError, LookupError) as err:
        raise TableError(
            f"{path}: cannot parse as {fmt} with data.delimiter {delimiter!r}, data.quoting "
            f"{cfg.quoting!r}, data.encoding {cfg.encoding!r} ({one_line(err)}); set the one "
            "that differs (`flywheel init` sniffs them)"
        ) from None
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    return frame


def read_table(root: Path, cfg: DataConfig) -> pd.DataFrame:
    """Every row of every table file, plus ``path`` (``<file>:<row>``, 1-based data rows)
    and ``valid_encoding`` (False where a cell held bytes invalid in ``data.encoding``)."""
    import pandas as pd

    root = Path(root)
    frames = []
    for file in table_files(root, cfg.pattern):
        frame = read_one(file, cfg)
        rel = file.name if root.is_file() else file.relative_to(root).as_posix()
        frame.insert(0, "path", [f"{rel}:{i + 1}" for i in range(len(frame))])
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["path"])
    text = table.drop(columns=["path"]).select_dtypes(include=["object", "string"])
    bad = (
        # Per cell, not .astype(str): pandas 3's str dtype cannot hold surrogates.
        text.apply(lambda col: col.map(_has_surrogate)).any(axis=1) if len(text.columns) else False
    )
    table["valid_encoding"] = ~pd.Series(bad, index=table.index, dtype=bool)
    return table


def _has_surrogate(value: object) -> bool:
    return isinstance(value, str) and _SURROGATE.search(value) is not None


def column(table: pd.DataFrame, ref: ColumnRef, what: str) -> pd.Series:
    """The column a params key names: by header name, or by 0-based position among the
    file's own columns (``path`` and ``valid_encoding`` are not counted)."""
    data_columns = [c for c in table.columns if c not in ("path", "valid_encoding")]
    if isinstance(ref, int) or (
        isinstance(ref, str) and ref.isdigit() and ref not in table.columns
    ):
        pos = int(ref)
        if not 0 <= pos < len(data_columns):
            raise TableError(
                f"{what}: column position {pos} out of range (the table has "
                f"{len(data_columns)} columns, 0 to {len(data_columns) - 1})"
            )
        return table[data_columns[pos]]
    if ref not in table.columns:
        raise TableError(f"{what}: no column {ref!r}; set it to one of {data_columns}")
    return table[ref]


def clean_text(value: object) -> str:
    """Undo the reader's surrogate escapes for display and tokenisation."""
    return str(value).encode("utf-8", "surrogateescape").decode("utf-8", "replace")
