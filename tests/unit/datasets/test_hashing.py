"""data_hash: DVC's hash of a folder, remembered under its files' signature and recomputed
when any file changes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from flywheel.datasets import hashing


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    (data / "cats").mkdir(parents=True)
    (data / "cats" / "1.txt").write_text("meow\n")
    (data / "dogs.txt").write_text("woof\n")
    return data


def _fresh(path: Path) -> str:
    return hashing._dvc_hash(path.resolve())


def test_the_remembered_hash_is_dvcs(folder: Path) -> None:
    assert hashing.data_hash(folder) == hashing.data_hash(folder) == _fresh(folder)
    assert hashing.data_hash(folder).endswith(".dir")


@pytest.mark.parametrize("change", ["rewrite", "add", "remove", "same_size_older"])
def test_a_changed_folder_gets_a_new_hash(folder: Path, change: str) -> None:
    before = hashing.data_hash(folder)
    target = folder / "cats" / "1.txt"
    if change == "rewrite":
        target.write_text("purr purr\n")
    elif change == "add":
        (folder / "cats" / "2.txt").write_text("hiss\n")
    elif change == "remove":
        target.unlink()
    else:
        stat = target.stat()
        target.write_text("MEOW\n")
        os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns - 1_000_000_000))
    after = hashing.data_hash(folder)
    assert after != before
    assert after == _fresh(folder)


def test_a_missing_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="dataset not found"):
        hashing.data_hash(tmp_path / "nope")
