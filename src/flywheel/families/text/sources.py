"""Labelled text examples from a table or a text folder, as one validation-ready table.

Public API (kept small on purpose: the text and sentiment families both build on it):

``read_text_examples(params, root) -> pd.DataFrame``
    One row per example, columns :data:`TEXT_COLUMNS`:

    ========================  ==================================================================
    ``path``                  unique id: ``<file>:<row>`` (tables, 1-based data rows) or the
                              file's path relative to ``root`` (text folders)
    ``text``                  the example's text (title + text joined when
                              ``data.title_column`` is set); ``None`` when the cell is missing.
                              Invalid bytes appear as U+FFFD, never as a crash.
    ``label``                 the label as a string; ``None`` when missing; ``""`` for a file
                              directly under a text folder's root (no label folder)
    ``valid_encoding``        False where the bytes were not valid in ``data.encoding``
    ``n_chars``               characters of the stripped text (0 when missing or blank)
    ``text_sha256``           hash of the whitespace-collapsed text (None when missing): equal
                              hashes mean the same example, so uniqueness of this column both
                              removes duplicates and guarantees no text sits in two splits
    ``class_count``           rows sharing this row's label
    ========================  ==================================================================

``data.kind`` picks the source:

* ``table``: CSV/TSV/Parquet via :func:`flywheel.datasets.tables.read_table`; columns by name or
  0-based position (``data.text_column``, ``data.title_column``, ``data.label_column``).
* ``text_folder``: ``<root>/<label>/*.txt`` (the layout of Keras'
  ``text_dataset_from_directory``; ``data.pattern`` overrides ``*.txt``), read as bytes and
  decoded with ``data.encoding``.

``join_title(title, text)`` and ``text_hash(text)`` are the same joins and hashes, for code
that builds instances outside a dataset (serving, tests).

Nothing here raises on bad *content*; unreadable *configuration* (no such column, a file
that does not parse) raises :class:`flywheel.datasets.tables.TableError`.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from flywheel.core.config import Params
from flywheel.core.errors import DataNotFoundError
from flywheel.datasets.tables import TableError, clean_text, column, read_table, shown

TEXT_COLUMNS = (
    "path",
    "text",
    "label",
    "valid_encoding",
    "n_chars",
    "text_sha256",
    "class_count",
)
_BOM = "\ufeff"


def join_title(title: str | None, text: str | None) -> str | None:
    """``title`` and ``text`` as one example; either may be missing, not both."""
    parts = [p.strip() for p in (title, text) if p is not None and p.strip()]
    if not parts:
        return None if title is None and text is None else ""
    return "\n".join(parts)


def text_hash(text: str | None) -> str | None:
    """Identical up to whitespace means identical: such copies tokenise the same way."""
    if text is None:
        return None
    return hashlib.sha256(" ".join(text.split()).encode("utf-8")).hexdigest()


def read_text_examples(params: Params, root: Path) -> pd.DataFrame:
    """Every example under ``root`` as configured by ``params.data`` (see module doc)."""
    kind = params.data.kind
    if kind == "table":
        frame = _from_table(params, Path(root))
    elif kind == "text_folder":
        frame = _from_folder(params, Path(root))
    else:
        raise TableError(f"data.kind {kind!r} holds no text; use 'table' or 'text_folder'")
    return _finish(frame)


def _cell(value: object) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    if isinstance(value, float) and value.is_integer():
        # Parquet stores integer labels with nulls as floats; "1.0" would miss label "1".
        return str(int(value))
    return str(value)


def _from_table(params: Params, root: Path) -> pd.DataFrame:
    cfg = params.data
    table = read_table(root, cfg)
    texts = [_cell(v) for v in column(table, cfg.text_column, "data.text_column")]
    if cfg.title_column is not None:
        titles = [_cell(v) for v in column(table, cfg.title_column, "data.title_column")]
        texts = [join_title(t, x) for t, x in zip(titles, texts, strict=True)]
    labels = [_cell(v) for v in column(table, cfg.label_column, "data.label_column")]
    return pd.DataFrame(
        {
            "path": table["path"].astype(str).tolist(),
            "text": _objects(None if t is None else clean_text(t).lstrip(_BOM) for t in texts),
            "label": _objects(None if lab is None else clean_text(lab).strip() for lab in labels),
            "valid_encoding": table["valid_encoding"].astype(bool).tolist(),
        }
    )


def _objects(values: Iterable[str | None]) -> pd.Series:
    # object dtype keeps None as None; pandas 3's str dtype would turn it into NaN.
    return pd.Series(list(values), dtype=object)


def _from_folder(params: Params, root: Path) -> pd.DataFrame:
    if not root.is_dir():
        raise DataNotFoundError(
            f"text folder not found: {shown(root)}; set data.path to the folder of label folders"
        )
    pattern = params.data.pattern or "*.txt"
    encoding = params.data.encoding
    try:
        "".encode(encoding)
    except LookupError:
        raise TableError(f"data.encoding: unknown encoding {encoding!r}") from None
    rows: list[dict[str, object]] = []
    for file in sorted(p for p in root.rglob(pattern) if p.is_file()):
        rel = file.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue
        data = file.read_bytes()
        try:
            text = data.decode(encoding)
            valid = True
        except UnicodeDecodeError:
            text = data.decode(encoding, "replace")
            valid = False
        rows.append(
            {
                "path": rel.as_posix(),
                "text": text.lstrip(_BOM),
                # A file outside any label folder has no label: rejected, not dropped.
                "label": rel.parts[0] if len(rel.parts) > 1 else "",
                "valid_encoding": valid,
            }
        )
    frame = pd.DataFrame(rows, columns=["path", "text", "label", "valid_encoding"])
    return frame.astype({"text": object, "label": object})


def _finish(frame: pd.DataFrame) -> pd.DataFrame:
    texts = [t if isinstance(t, str) else None for t in frame["text"]]
    frame["n_chars"] = pd.Series(
        [0 if t is None else len(t.strip()) for t in texts], index=frame.index, dtype="int64"
    )
    frame["text_sha256"] = pd.Series([text_hash(t) for t in texts], index=frame.index, dtype=object)
    frame["valid_encoding"] = frame["valid_encoding"].astype(bool)
    counts = frame.groupby("label", dropna=False)["path"].transform("count")
    frame["class_count"] = counts.fillna(0).astype("int64") if len(frame) else counts
    return frame.loc[:, list(TEXT_COLUMNS)].reset_index(drop=True)
