"""What lies at the path a user gave: the files, by kind and place, and the data kind.

A folder whose sub-folders hold images is an image folder, one whose sub-folders hold
``.txt`` files a text folder, one holding table files (or delimited ``.txt`` files) a folder
of tables; a single file is a table. Files that do not fit (a README at the root, a stray
file in a label folder) are listed so init can leave them out with ``data.pattern`` or
report them. Anything else is refused with what was found.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from flywheel.core.errors import DataError, DataNotFoundError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff"})
TEXT_SUFFIXES = frozenset({".txt", ".text"})
TABLE_SUFFIXES = frozenset({".csv", ".tsv", ".tab", ".parquet", ".pq"})
# Share of the files in label folders that must be of one kind for the folder to be that
# kind; the rest are strays. Below it the folder is a mix, not a dataset.
MAJORITY = 0.8


def file_kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in TEXT_SUFFIXES:
        return "text"
    if suffix in TABLE_SUFFIXES:
        return "table"
    return "other"


@dataclass(frozen=True)
class Entry:
    rel: str  # posix path relative to the root
    kind: str  # image | text | table | other

    @property
    def at_root(self) -> bool:
        return "/" not in self.rel

    @property
    def folder(self) -> str:
        return "" if self.at_root else self.rel.split("/", 1)[0]

    @property
    def suffix(self) -> str:
        return Path(self.rel).suffix


@dataclass(frozen=True)
class Listing:
    root: Path
    entries: tuple[Entry, ...]

    def where(self, *, kind: str | None = None, at_root: bool | None = None) -> list[Entry]:
        return [
            e
            for e in self.entries
            if (kind is None or e.kind == kind) and (at_root is None or e.at_root == at_root)
        ]


@dataclass(frozen=True)
class KindChoice:
    kind: str  # image_folder | text_folder | table
    files: tuple[Entry, ...]  # the files the pipeline will read
    strays: tuple[Entry, ...] = ()  # files left out by the pattern, or quarantined
    pattern: str | None = None
    notes: tuple[str, ...] = field(default=())


def list_files(root: Path) -> Listing:
    """Every file under ``root`` (hidden files and folders aside, as the readers skip them)."""
    entries = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue
        entries.append(Entry(rel.as_posix(), file_kind(path)))
    return Listing(root, tuple(entries))


def shown_counts(entries: list[Entry] | tuple[Entry, ...]) -> str:
    counts = Counter(
        {"image": "images", "text": ".txt files", "table": "tables"}.get(e.kind, "other files")
        for e in entries
    )
    return ", ".join(f"{n:,} {what}" for what, n in sorted(counts.items(), key=lambda kv: -kv[1]))


def choose_kind(path: Path, table_shape: Callable[[Path], object | None]) -> KindChoice:
    """The data kind at ``path``. ``table_shape(path)`` is a text file's shape as a table
    (None: not one); the sniffer's call, passed in to keep this module about files."""
    if not path.exists():
        raise DataNotFoundError(
            f"{os.path.normpath(path)} does not exist: give the dataset's folder or file"
        )
    if path.is_file():
        return KindChoice("table", (Entry(path.name, file_kind(path)),))
    listing = list_files(path)
    if not listing.entries:
        raise DataError(
            f"{path} is empty (no files, hidden ones aside): put the data in it first, e.g. "
            "one sub-folder of images or .txt files per label, or a CSV file"
        )
    in_folders = listing.where(at_root=False)
    folders = sorted({e.folder for e in in_folders})
    major, share = _majority(in_folders)
    if in_folders and major in ("image", "text") and share >= MAJORITY:
        return _label_folders(listing, major)
    if in_folders and major == "table" and share >= MAJORITY:
        return KindChoice(
            "table", tuple(listing.where(kind="table")), tuple(listing.where(kind="other"))
        )
    if not in_folders or not folders:
        return _root_files(listing, table_shape)
    raise DataError(
        f"{path} mixes kinds of files in its sub-folders ({shown_counts(in_folders)}): a "
        "dataset is one sub-folder per label of images or of .txt files, or tables; move "
        "the others out"
    )


def _majority(entries: list[Entry]) -> tuple[str, float]:
    if not entries:
        return "", 0.0
    kind, n = Counter(e.kind for e in entries).most_common(1)[0]
    return kind, n / len(entries)


def _label_folders(listing: Listing, major: str) -> KindChoice:
    candidates = listing.where(kind=major, at_root=False)
    suffixes = Counter(e.suffix for e in candidates)
    if major == "text":
        # The text reader reads every file its glob names as text: one suffix, or none.
        suffix = suffixes.most_common(1)[0][0]
        candidates = [e for e in candidates if e.suffix == suffix]
    files = tuple(candidates)
    strays = tuple(e for e in listing.entries if e not in set(files))
    pattern = _folder_pattern(major, files, strays)
    default = "*" if major == "image" else "*.txt"
    read = [e for e in strays if Path(e.rel).match(pattern or default)]
    kind = "image_folder" if major == "image" else "text_folder"
    return KindChoice(kind, files, strays, pattern, tuple(e.rel for e in read))


def _folder_pattern(major: str, files: tuple[Entry, ...], strays: tuple[Entry, ...]) -> str | None:
    """The ``data.pattern`` that reads ``files`` and as few strays as one glob can; None
    where the reader's default does."""
    suffixes = sorted({e.suffix for e in files})
    root_strays = [e for e in strays if e.at_root]
    if major == "text":
        (suffix,) = suffixes
        if any(e.suffix == suffix for e in root_strays):
            return f"*/*{suffix}"
        return None if suffix == ".txt" else f"*{suffix}"
    if not strays:
        return None
    if len(suffixes) == 1:
        return f"*/*{suffixes[0]}"
    return "*/*" if root_strays else None


def _root_files(listing: Listing, table_shape: Callable[[Path], object | None]) -> KindChoice:
    root = listing.root
    tables = listing.where(kind="table")
    if tables:
        return KindChoice(
            "table", tuple(tables), tuple(e for e in listing.entries if e not in tables)
        )
    texts = listing.where(kind="text")
    shapes = {e: table_shape(root / e.rel) for e in texts}
    common = Counter(s for s in shapes.values() if s is not None).most_common(1)
    delimited = [e for e in texts if common and shapes[e] == common[0][0]]
    if delimited:
        others = tuple(e for e in listing.entries if e not in delimited)
        return KindChoice("table", tuple(delimited), others, table_pattern(delimited, others))
    images = listing.where(kind="image")
    if images or texts:
        what = "images" if len(images) >= len(texts) else ".txt files"
        raise DataError(
            f"{root} holds {shown_counts(listing.entries)} directly, not in one sub-folder per "
            f"label: move the {what} into {root}/<label>/ (the folder name is the label)"
        )
    raise DataError(
        f"{root} holds no images, .txt files or tables ({shown_counts(listing.entries)}): "
        "give an image folder, a text folder or a CSV/TSV/Parquet table"
    )


def table_pattern(tables: list[Entry], others: tuple[Entry, ...]) -> str:
    """A glob naming exactly ``tables`` among the files: their common name ending."""
    names = [Path(e.rel).name for e in tables]
    if len(names) == 1:
        return names[0]
    # Character by character on purpose: the common ending of names, not of path parts.
    tail = os.path.commonprefix([n[::-1] for n in names])[::-1]  # noqa: RUF071
    pattern = f"*{tail}"
    if any(Path(e.rel).match(pattern) for e in others):
        listed = ", ".join(names[:4])
        raise DataError(
            f"no one file pattern picks the tables ({listed}) apart from the other files in "
            f"{tables[0].rel.rsplit('/', 1)[0] if '/' in tables[0].rel else 'the folder'}: "
            "move the other files out, or the tables into a folder of their own"
        )
    return pattern
