"""Feedback records as data files of the dataset's own kind, never an edit of one.

Image and text folders get one new file per record, ``<label>/feedback-<id>.<suffix>``;
a table gets one new part, ``feedback-<time>-<id>.<suffix>`` beside the existing ones,
in their format, holding the configured columns only. The ``feedback-`` prefix is how a
manifest path is known to come from feedback (the card and the run summary count them).
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

from flywheel.core.config import Params
from flywheel.core.errors import ConfigError
from flywheel.datasets.tables import table_files
from flywheel.feedback.inbox import Record

PREFIX = "feedback-"
_SUFFIX = {"csv": ".csv", "tsv": ".tsv", "parquet": ".parquet"}


def is_feedback_path(path: str) -> bool:
    """Whether a manifest path (``a/b.png`` or ``<file>:<row>``) names feedback data."""
    file, _, row = path.rpartition(":")
    name = file if file and row.isdigit() else path
    return Path(name).name.startswith(PREFIX)


def _instance(record: Record) -> Any:
    return json.loads(record.instance_file.read_bytes())


def _text_of(value: Any) -> tuple[str, str | None]:
    if isinstance(value, dict):
        return str(value.get("text", "")), value.get("title")
    return str(value), None


def folder_files(params: Params, records: list[Record]) -> dict[str, bytes]:
    """``{relative path under data.path: bytes}`` for an image or text folder."""
    from flywheel.families.text.sources import join_title

    out: dict[str, bytes] = {}
    for record in records:
        label = str(record.meta["label"])
        if params.data.kind == "image_folder":
            out[f"{label}/{PREFIX}{record.id}.png"] = record.instance_file.read_bytes()
        else:
            body, title = _text_of(_instance(record))
            text = join_title(title, body) or ""
            out[f"{label}/{PREFIX}{record.id}.txt"] = text.encode(params.data.encoding)
    return out


def _row(params: Params, record: Record) -> dict[Any, Any]:
    data = params.data
    instance = _instance(record)
    if params.is_regression:
        return {**dict(instance), data.target: record.meta["label"]}
    body, title = _text_of(instance)
    row = {data.text_column: body, data.label_column: record.meta["label"]}
    if data.title_column is not None:
        row[data.title_column] = title or ""
    return row


def _part_format(params: Params, data: Path) -> str:
    if params.data.format != "auto":
        return params.data.format
    existing = table_files(data, params.data.pattern)
    return {".tsv": "tsv", ".parquet": "parquet"}.get(existing[0].suffix.lower(), "csv")


def _part_name(params: Params, fmt: str, first_id: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    stem = f"{PREFIX}{stamp}-{first_id[:8]}"
    pattern = (params.data.pattern or "").rsplit("/", 1)[-1]
    # A pattern such as "*_labelled.txt": the part takes the tail it asks for.
    name = stem + pattern[1:] if pattern.startswith("*") else stem + _SUFFIX[fmt]
    if pattern and not fnmatch(name, pattern):
        raise ConfigError(
            f"a feedback part {name} would not match data.pattern {params.data.pattern!r}; "
            "use a pattern of the form *<suffix> so feedback-* parts match it"
        )
    return name


def _columns(params: Params, rows: list[dict[Any, Any]]) -> list[Any]:
    keys = list(dict.fromkeys(k for row in rows for k in row))
    if params.data.header:
        return [str(k) for k in keys]
    # Headerless: columns are positions; the ones feedback has no value for stay blank.
    if not all(isinstance(k, int) for k in keys):
        raise ConfigError("a headerless table (data.header: false) needs columns by position")
    return list(range(max(keys) + 1))


def table_part(params: Params, data: Path, records: list[Record]) -> tuple[str, bytes]:
    """The name and bytes of one new table part holding ``records``."""
    if not data.is_dir():
        raise ConfigError(
            f"feedback joins a table as a new part file, but data.path ({data}) is one file: "
            "move it into a folder and set data.path to the folder"
        )
    fmt = _part_format(params, data)
    name = _part_name(params, fmt, records[0].id)
    rows = [_row(params, r) for r in records]
    columns = _columns(params, rows)
    cells = [["" if row.get(c) is None else row.get(c) for c in columns] for row in rows]
    if fmt == "parquet":
        import pandas as pd

        buffer = io.BytesIO()
        frame = pd.DataFrame(cells, columns=[str(c) for c in columns])
        frame.to_parquet(buffer, index=False)
        return name, buffer.getvalue()
    text = io.StringIO()
    unquoted = params.data.quoting == "none"
    writer = csv.writer(
        text,
        delimiter=params.data.delimiter or ("\t" if fmt == "tsv" else ","),
        lineterminator="\n",
        quoting=csv.QUOTE_NONE if unquoted else csv.QUOTE_MINIMAL,
        # Unquoted tables cannot hold a delimiter or newline in a cell: they become spaces.
        # A quote mark is plain text there (as the reader takes it), never escaped.
        quotechar=None if unquoted else '"',
        escapechar=None,
    )
    if params.data.header:
        writer.writerow(columns)
    if unquoted:
        cells = [[_flat(v, writer.dialect.delimiter) for v in row] for row in cells]
    writer.writerows(cells)
    return name, text.getvalue().encode(params.data.encoding)


def _flat(value: Any, delimiter: str) -> Any:
    if not isinstance(value, str):
        return value
    return " ".join(value.replace(delimiter, " ").split())
