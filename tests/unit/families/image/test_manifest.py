"""build_manifest: the table the expectation suite runs on."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flywheel.datasets.png import encode_png
from flywheel.families.image.manifest import MANIFEST_COLUMNS, build_manifest


def _png(seed: int, shape: tuple[int, ...] = (8, 8)) -> bytes:
    return encode_png(np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8))


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    for seed, name in enumerate(["cat/0.png", "cat/1.png", "dog/0.png"]):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(_png(seed))
    (root / "dog" / "rgb.png").write_bytes(_png(7, (4, 6, 3)))
    (root / "dog" / "broken.png").write_bytes(b"not a png")
    (root / "cat" / "nested").mkdir()
    (root / "cat" / "nested" / "deep.png").write_bytes(_png(8))
    (root / "stray.png").write_bytes(_png(9))
    (root / ".hidden").mkdir()
    (root / ".hidden" / "x.png").write_bytes(_png(10))
    (root / "cat" / ".DS_Store").write_bytes(b"junk")
    return root


def test_one_row_per_visible_file_sorted_by_path(tree: Path) -> None:
    frame = build_manifest(tree)
    assert tuple(frame.columns) == MANIFEST_COLUMNS
    assert list(frame["path"]) == [
        "cat/0.png",
        "cat/1.png",
        "cat/nested/deep.png",
        "dog/0.png",
        "dog/broken.png",
        "dog/rgb.png",
        "stray.png",
    ]


def test_labels_and_class_counts(tree: Path) -> None:
    frame = build_manifest(tree).set_index("path")
    assert frame.loc["cat/nested/deep.png", "label"] == "cat"
    # A file at the root has no label, so the suite rejects it rather than it vanishing.
    assert frame.loc["stray.png", "label"] == ""
    assert frame.loc["cat/0.png", "class_count"] == 3
    assert frame.loc["dog/rgb.png", "class_count"] == 3
    assert frame.loc["stray.png", "class_count"] == 1


def test_image_properties_and_hashes(tree: Path) -> None:
    frame = build_manifest(tree).set_index("path")
    grey = frame.loc["cat/0.png"]
    assert (grey.width, grey.height, grey["mode"], grey.format, grey.readable) == (
        8,
        8,
        "L",
        "PNG",
        True,
    )
    assert grey.error == ""
    rgb = frame.loc["dog/rgb.png"]
    assert (rgb.width, rgb.height, rgb["mode"]) == (6, 4, "RGB")
    data = (tree / "cat" / "0.png").read_bytes()
    assert grey.sha256 == hashlib.sha256(data).hexdigest()
    assert grey.size_bytes == len(data)


def test_unreadable_file_is_a_row_not_a_crash(tree: Path) -> None:
    broken = build_manifest(tree).set_index("path").loc["dog/broken.png"]
    assert not broken.readable
    assert (broken.width, broken.height, broken["mode"], broken.format) == (0, 0, "", "")
    assert "UnidentifiedImageError" in broken.error
    assert broken.sha256 == hashlib.sha256(b"not a png").hexdigest()


def test_dtypes_are_fixed(tree: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    for frame in (build_manifest(tree), build_manifest(empty)):
        for column in ("width", "height", "size_bytes", "class_count"):
            assert frame[column].dtype == "int64", column
        assert frame["readable"].dtype == bool


def test_empty_folder_gives_empty_table(tmp_path: Path) -> None:
    frame = build_manifest(tmp_path)
    assert frame.empty and tuple(frame.columns) == MANIFEST_COLUMNS


def test_missing_folder_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match="nowhere"):
        build_manifest(missing)


def test_same_tree_gives_same_table(tree: Path) -> None:
    pd.testing.assert_frame_equal(build_manifest(tree), build_manifest(tree))
