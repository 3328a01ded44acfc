from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from flywheel.datasets.digits import materialise_digits
from flywheel.datasets.hashing import data_hash
from flywheel.datasets.png import encode_png


@pytest.mark.parametrize("shape", [(8, 8), (5, 13), (300, 300), (4, 6, 3)])
def test_png_round_trips(tmp_path: Path, shape: tuple[int, ...]) -> None:
    pixels = np.random.default_rng(0).integers(0, 256, size=shape, dtype=np.uint8)
    path = tmp_path / "x.png"
    path.write_bytes(encode_png(pixels))
    with Image.open(path) as image:
        assert np.array_equal(np.asarray(image), pixels)


def test_png_rejects_bad_arrays() -> None:
    with pytest.raises(ValueError, match="uint8"):
        encode_png(np.zeros((2, 2), dtype=np.float32))
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        encode_png(np.zeros((2, 2, 4), dtype=np.uint8))


def test_default_dataset_matches_committed_data_dvc(tmp_path: Path, project_root: Path) -> None:
    """The committed data.dvc must match the dataset any machine materialises, byte for byte."""
    import yaml

    n = materialise_digits(tmp_path / "data")
    assert n == 1797
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == [str(i) for i in range(10)]
    committed = yaml.safe_load((project_root / "data.dvc").read_text())["outs"][0]
    assert data_hash(tmp_path / "data") == committed["md5"]
    assert committed["nfiles"] == n


def test_materialise_refuses_to_overwrite_user_data(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "mine.txt").write_text("precious")
    with pytest.raises(FileExistsError, match="not empty"):
        materialise_digits(tmp_path / "data")
    assert (tmp_path / "data" / "mine.txt").read_text() == "precious"


def test_materialise_is_deterministic(tmp_path: Path) -> None:
    materialise_digits(tmp_path / "a")
    materialise_digits(tmp_path / "b")
    for rel in ("0/0000.png", "8/1796.png"):
        assert (
            hashlib.sha256((tmp_path / "a" / rel).read_bytes()).digest()
            == hashlib.sha256((tmp_path / "b" / rel).read_bytes()).digest()
        )
