"""Datasets of every kind, made by code, as a new user would hand them to ``flywheel init``:
with the untidiness real ones have (stray READMEs, mixed modes and sizes, one file in
Latin-1, blanks, quoted commas, categoricals, no header) and nothing flywheel-specific.

Built from the other generators (photo folders, the news corpus, the diabetes table, review
sentences) so the labels are learnable and a first run can pass its gate.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from tests.photo_folder import add_defects, write_photo_folder
from tests.sentiment_data import sentences, write_labelled
from tests.tabular_data import diabetes_frame
from tests.text_corpus import news_corpus, write_news_csv, write_news_folder

LATIN1_TEXT = "Ministers signed the treaty in Zürich on Friday, the café owners said."


def image_folder(root: Path, per_class: int = 40) -> Path:
    """JPEG and PNG in modes RGB, L, RGBA and P, 20-96 px, a truncated file, a copy under
    the other label, and a README at the root."""
    write_photo_folder(root, per_class=per_class)
    add_defects(root)
    (root / "README.md").write_text("Stripes, photographed by a test.\n")
    return root


def text_folder(root: Path, per_class: int = 30) -> Path:
    """One folder of .txt per topic; a README.txt at the root, a notes file among the
    texts, one Latin-1 file beside UTF-8 files with accents."""
    write_news_folder(root, news_corpus(per_class, seed=5))
    (root / "README.txt").write_text("Four topics, one folder each.\n")
    (root / "2" / "notes.md").write_text("collected by hand\n")
    (root / "1" / "latin1.txt").write_bytes(LATIN1_TEXT.encode("latin-1"))
    (root / "3" / "accents.txt").write_text(
        "Les investisseurs ont réduit les dividendes, the bank reported.", encoding="utf-8"
    )
    return root


def news_csv(path: Path, per_class: int = 30) -> Path:
    """AG-news style with a header: every field quoted, commas and quotes inside."""
    rows = [
        (label, f'{title}, "exclusive"', body)
        for label, title, body in news_corpus(per_class, seed=6)
    ]
    return write_news_csv(path, rows, header=True)


def tabular_frame() -> pd.DataFrame:
    """The diabetes table with blank ``bp`` cells and a categorical whose values hold commas
    (so the CSV quotes them)."""
    frame = diabetes_frame()
    frame["age_band"] = frame["age_band"].replace({"60+": "60+, retired"})
    return frame


def tabular_csv(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tabular_frame().to_csv(path, index=False, lineterminator="\n")
    return path


def tabular_parquet(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tabular_frame().to_parquet(path, index=False)
    return path


def sentiment_tsv(folder: Path, per_class: int = 40) -> Path:
    """Headerless ``sentence<TAB>label`` files ending in _labelled.txt beside a readme.txt,
    the layout of the UCI sentiment files."""
    rows = sentences(per_class, seed=3)
    half = len(rows) // 2
    write_labelled(folder / "shop_labelled.txt", rows[:half])
    write_labelled(folder / "food_labelled.txt", rows[half:])
    (folder / "readme.txt").write_text(
        "Sentences, labelled 0 (negative) or 1 (positive).\n\nFormat: sentence, a tab, 1 or 0.\n"
    )
    return folder


def write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def not_datasets(root: Path) -> dict[str, Path]:
    """What init must refuse: an empty folder, a mix of files, a binary file, one column."""
    from PIL import Image

    empty = root / "empty"
    empty.mkdir(parents=True)
    mixed = root / "mixed"
    for label in ("a", "b"):
        (mixed / label).mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(mixed / label / "x.png")
        (mixed / label / "y.txt").write_text("some words\n")
        (mixed / label / "z.json").write_text("{}\n")
    binary = root / "blob.bin"
    binary.write_bytes(bytes(range(256)) * 4)
    one_column = root / "one.csv"
    one_column.write_text("value\n1\n2\n3\n4\n")
    return {"empty": empty, "mixed": mixed, "binary": binary, "one_column": one_column}
