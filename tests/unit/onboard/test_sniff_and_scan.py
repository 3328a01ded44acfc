"""How init reads files before any family does: encodings, a table's dialect, the data kind
of a folder and the pattern that leaves its stray files out."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from flywheel.core.errors import DataError
from flywheel.onboard.scan import choose_kind
from flywheel.onboard.sniff import guess_encoding, sniff_table, table_shape


def test_encodings() -> None:
    assert guess_encoding([b"plain", "café".encode()]).name == "utf-8"
    assert guess_encoding(["\ufeffa,b".encode()]).name == "utf-8-sig"
    # Nothing needs UTF-8 and one file is Latin-1: the code page reads them all.
    assert guess_encoding([b"plain", "café".encode("latin-1")]).name == "cp1252"
    # Both kinds: UTF-8, and the other file named (it is quarantined).
    mixed = guess_encoding(["café".encode(), "café".encode("latin-1")])
    assert (mixed.name, mixed.not_utf8) == ("utf-8", (1,))


def test_headerless_tsv_with_stray_quotes_reads_with_quoting_off(tmp_path: Path) -> None:
    path = tmp_path / "reviews.txt"
    lines = ['"Great phone, really\t1', "Awful battery\t0", 'Fine "ish" screen\t1'] * 5
    path.write_text("\n".join(lines) + "\n")
    fmt = sniff_table(path)
    assert (fmt.format, fmt.delimiter, fmt.header, fmt.quoting, fmt.columns) == (
        "tsv",
        "\t",
        False,
        "none",
        2,
    )


def test_semicolons_header_and_bom(tmp_path: Path) -> None:
    path = tmp_path / "prices.csv"
    rows = ["size;price;town"] + [f"{i};{i * 1000.5};Town {i % 3}" for i in range(1, 20)]
    path.write_bytes(("\ufeff" + "\n".join(rows) + "\n").encode())
    fmt = sniff_table(path)
    assert (fmt.delimiter, fmt.header, fmt.encoding, fmt.columns) == (";", True, "utf-8-sig", 3)


def test_quoted_csv_with_commas_inside_keeps_quoting(tmp_path: Path) -> None:
    path = tmp_path / "news.csv"
    rows = [f'"{i % 4}","Title {i}, with a comma","Body of story {i}."' for i in range(30)]
    path.write_text("\n".join(rows) + "\n")
    fmt = sniff_table(path)
    assert (fmt.delimiter, fmt.header, fmt.quoting, fmt.columns) == (",", False, "minimal", 3)


def test_prose_and_binaries_are_not_tables(tmp_path: Path) -> None:
    prose = tmp_path / "readme.txt"
    prose.write_text("A dataset, made by hand.\n\nEach line is: a sentence, a tab, a label.\nOk\n")
    assert table_shape(prose) is None
    binary = tmp_path / "x.csv"
    binary.write_bytes(bytes(range(256)))
    with pytest.raises(DataError, match="binary file"):
        sniff_table(binary)


def _png(path: Path, mode: str = "RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, (6, 6)).save(path)


def test_image_folder_with_strays_gets_a_pattern(tmp_path: Path) -> None:
    for label in ("cat", "dog"):
        for i in range(5):
            _png(tmp_path / label / f"{i}.png")
    (tmp_path / "README.md").write_text("x")
    (tmp_path / "cat" / "Thumbs.db").write_bytes(b"\x00\x01")
    choice = choose_kind(tmp_path, table_shape)
    assert (choice.kind, choice.pattern) == ("image_folder", "*/*.png")  # both strays out
    assert choice.notes == ()
    # Two suffixes: one glob cannot name both, so only the root stray is left out.
    _png(tmp_path / "dog" / "9.jpg")
    choice = choose_kind(tmp_path, table_shape)
    assert (choice.pattern, choice.notes) == ("*/*", ("cat/Thumbs.db",))


def test_text_folder_readme_at_the_root(tmp_path: Path) -> None:
    for label in ("a", "b"):
        (tmp_path / label).mkdir()
        (tmp_path / label / "1.txt").write_text("words")
    (tmp_path / "LICENSE").write_text("x")
    assert choose_kind(tmp_path, table_shape).pattern is None  # *.txt skips LICENSE
    (tmp_path / "README.txt").write_text("x")
    assert choose_kind(tmp_path, table_shape).pattern == "*/*.txt"


def test_images_at_the_root_are_refused_with_the_fix(tmp_path: Path) -> None:
    _png(tmp_path / "1.png")
    _png(tmp_path / "2.png")
    with pytest.raises(DataError, match=r"move the images into .*/<label>/"):
        choose_kind(tmp_path, table_shape)


def test_tables_among_text_files_get_their_common_ending(tmp_path: Path) -> None:
    for name in ("amazon_labelled.txt", "yelp_labelled.txt"):
        (tmp_path / name).write_text("".join(f"Sentence {i} here.\t{i % 2}\n" for i in range(20)))
    (tmp_path / "readme.txt").write_text("About: these files.\n\nMore text, here.\n")
    choice = choose_kind(tmp_path, table_shape)
    assert (choice.kind, choice.pattern) == ("table", "*_labelled.txt")
    assert [e.rel for e in choice.strays] == ["readme.txt"]
