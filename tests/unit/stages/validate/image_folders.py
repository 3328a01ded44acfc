"""Small image folders for the validate stage tests: a good one, the ways to break it, and
the expectations each break must fail."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from flywheel.datasets.png import encode_png

ROW_COUNT = "expect_table_row_count_to_be_between"
LABEL_SET = "expect_column_distinct_values_to_equal_set(label)"
LABEL_IN_SET = "expect_column_values_to_be_in_set(label)"
READABLE = "expect_column_values_to_be_in_set(readable)"
UNIQUE_SHA = "expect_column_values_to_be_unique(sha256)"

LABELS = ("a", "b", "c")
PER_CLASS = 3


def png_bytes(seed: int, size: int = 8) -> bytes:
    """A deterministic grey PNG, different for every seed."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size), dtype=np.uint8)
    return encode_png(pixels)


def write_dataset(root: Path, per_class: dict[str, int]) -> None:
    seed = 0
    for label, count in per_class.items():
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            (root / label / f"{i}.png").write_bytes(png_bytes(seed))
            seed += 1


def _corrupt_png(data: Path) -> None:
    (data / "a" / "broken.png").write_bytes(png_bytes(99)[:40])


def _unknown_label(data: Path) -> None:
    (data / "zebra").mkdir()
    for i in range(PER_CLASS):
        (data / "zebra" / f"{i}.png").write_bytes(png_bytes(1000 + i))


def _missing_class(data: Path) -> None:
    shutil.rmtree(data / "c")


def _empty(data: Path) -> None:
    shutil.rmtree(data)
    data.mkdir()


def _duplicate_across_labels(data: Path) -> None:
    shutil.copyfile(data / "a" / "0.png", data / "b" / "copy-of-a0.png")


# (how to break the good dataset, expectations that must fail, paths that must be quarantined)
BROKEN = {
    "corrupt-png": (_corrupt_png, {READABLE}, {"a/broken.png"}),
    "unknown-label": (
        _unknown_label,
        {LABEL_SET, LABEL_IN_SET},
        {"zebra/0.png", "zebra/1.png", "zebra/2.png"},
    ),
    "missing-class": (_missing_class, {LABEL_SET}, set()),
    "empty": (_empty, {ROW_COUNT, LABEL_SET}, set()),
    "duplicate": (_duplicate_across_labels, {UNIQUE_SHA}, {"a/0.png", "b/copy-of-a0.png"}),
}
