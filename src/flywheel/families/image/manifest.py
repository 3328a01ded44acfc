"""A table describing every file of an image-folder dataset: what validation checks.

One row per file under ``<root>/<label>/``. Files directly under the root get an empty
label, so the suite rejects them instead of the listing silently dropping them.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

from flywheel.core.errors import DataNotFoundError

if TYPE_CHECKING:
    import pandas as pd

MANIFEST_COLUMNS = (
    "path",
    "label",
    "width",
    "height",
    "mode",
    "format",
    "readable",
    "error",
    "sha256",
    "size_bytes",
    "class_count",
)


def _describe(path: Path) -> dict[str, object]:
    data = path.read_bytes()
    row: dict[str, object] = {
        "width": 0,
        "height": 0,
        "mode": "",
        "format": "",
        "readable": False,
        "error": "",
        "sha256": hashlib.sha256(data).hexdigest(),
        "size_bytes": len(data),
    }
    try:
        with Image.open(path) as image:
            image.load()
            row.update(
                width=image.width,
                height=image.height,
                mode=image.mode,
                format=image.format or "",
                readable=True,
            )
    except Exception as err:
        row["error"] = f"{type(err).__name__}: {err}"
    return row


def build_manifest(root: Path, pattern: str | None = None) -> pd.DataFrame:
    """``pattern`` (``data.pattern``) picks the files; default every file, so a stray one is
    a finding. ``*/*`` leaves out files directly under the root (a README, a licence)."""
    import pandas as pd  # here: loading the family (for its defaults) needs no pandas

    root = Path(root)
    if not root.is_dir():
        raise DataNotFoundError(
            f"dataset folder not found: {os.path.normpath(root)}; set data.path to the folder "
            "holding one sub-folder per label"
        )
    rows = []
    for path in sorted(p for p in root.rglob(pattern or "*") if p.is_file()):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue
        label = rel.parts[0] if len(rel.parts) > 1 else ""
        rows.append({"path": rel.as_posix(), "label": label, **_describe(path)})
    frame = pd.DataFrame(rows, columns=[c for c in MANIFEST_COLUMNS if c != "class_count"])
    frame["class_count"] = frame.groupby("label")["path"].transform("count").astype("int64")
    return frame.astype(
        {"width": "int64", "height": "int64", "readable": "bool", "size_bytes": "int64"}
    )
