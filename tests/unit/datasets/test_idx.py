"""IDX files (the MNIST format): reading, checking, and conversion to a PNG image folder."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from flywheel.cli import app
from flywheel.core.errors import FlywheelError
from flywheel.datasets.idx import (
    DestinationNotEmptyError,
    IdxError,
    import_idx,
    read_idx,
    read_idx_header,
    read_idx_pair,
)

CODES = {
    np.dtype(np.uint8): 0x08,
    np.dtype(np.int8): 0x09,
    np.dtype(">i4"): 0x0C,
    np.dtype(">f4"): 0x0D,
}


def idx_bytes(array: np.ndarray, code: int | None = None) -> bytes:
    dtype = array.dtype.newbyteorder(">") if array.dtype.itemsize > 1 else array.dtype
    code = CODES[dtype] if code is None else code
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(dtype).tobytes()


def write_idx(path: Path, array: np.ndarray, *, compress: bool = False) -> Path:
    data = idx_bytes(array)
    path.write_bytes(gzip.compress(data, mtime=0) if compress else data)
    return path


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(12, 5, 7), dtype=np.uint8)
    labels = np.array([3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8], dtype=np.uint8)
    return (
        write_idx(tmp_path / "images-idx3-ubyte.gz", images, compress=True),
        write_idx(tmp_path / "labels-idx1-ubyte", labels),
        images,
        labels,
    )


@pytest.mark.parametrize("compress", [False, True])
def test_read_round_trips_each_type(tmp_path: Path, compress: bool) -> None:
    for dtype in (np.uint8, np.int8, np.int32, np.float32):
        start = 0 if np.dtype(dtype).kind == "u" else -6
        array = np.arange(start, start + 24).astype(dtype).reshape(2, 3, 4)
        path = write_idx(tmp_path / f"{np.dtype(dtype).name}.idx", array, compress=compress)
        assert read_idx_header(path).shape == (2, 3, 4)
        out = read_idx(path)
        assert out.dtype.isnative and out.flags.writeable and np.array_equal(out, array)
        assert np.array_equal(read_idx(path, limit=1), array[:1])


def test_import_round_trips_to_a_png_folder(
    tmp_path: Path, pair: tuple[Path, Path, np.ndarray, np.ndarray]
) -> None:
    images_file, labels_file, images, labels = pair
    dest = tmp_path / "out" / "digits"
    assert import_idx(images_file, labels_file, dest) == 12
    assert sorted(p.name for p in dest.iterdir()) == sorted({str(v) for v in labels})
    for index, (pixels, label) in enumerate(zip(images, labels, strict=True)):
        with Image.open(dest / str(label) / f"{index:04d}.png") as image:
            assert image.mode == "L"
            assert np.array_equal(np.asarray(image), pixels)
    # nothing but the dataset is left beside it
    assert [p.name for p in dest.parent.iterdir()] == ["digits"]


def test_import_is_deterministic_and_honours_limit(
    tmp_path: Path, pair: tuple[Path, Path, np.ndarray, np.ndarray]
) -> None:
    images_file, labels_file, _, _ = pair
    tmp_path.joinpath("a").mkdir()  # an existing empty folder is accepted
    assert import_idx(images_file, labels_file, tmp_path / "a", limit=4) == 4
    assert import_idx(images_file, labels_file, tmp_path / "b", limit=4) == 4
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.png"))
    assert [f.as_posix() for f in files] == ["1/0001.png", "1/0003.png", "3/0000.png", "4/0002.png"]
    for rel in files:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()


def test_rgb_images_become_rgb_pngs(tmp_path: Path) -> None:
    images = np.random.default_rng(1).integers(0, 256, size=(2, 3, 4, 3), dtype=np.uint8)
    write_idx(tmp_path / "img", images)
    write_idx(tmp_path / "lab", np.array([0, 1], dtype=np.uint8))
    import_idx(tmp_path / "img", tmp_path / "lab", tmp_path / "out")
    with Image.open(tmp_path / "out" / "1" / "0001.png") as image:
        assert image.mode == "RGB" and np.array_equal(np.asarray(image), images[1])


def test_bad_magic_is_named(tmp_path: Path) -> None:
    path = tmp_path / "x.idx"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(32))
    with pytest.raises(IdxError, match="bad magic number 0x89504e47") as info:
        read_idx(path)
    assert info.value.path == path and isinstance(info.value, FlywheelError)
    assert str(path) in str(info.value)


def test_unknown_type_code_and_zero_dimensions(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(bytes([0, 0, 0x0A, 1]) + struct.pack(">I", 1) + b"x")
    with pytest.raises(IdxError, match="unknown type code 0x0A"):
        read_idx(tmp_path / "a")
    (tmp_path / "b").write_bytes(bytes([0, 0, 0x08, 0]))
    with pytest.raises(IdxError, match="zero dimensions"):
        read_idx(tmp_path / "b")


@pytest.mark.parametrize("compress", [False, True])
def test_truncated_data_is_refused(tmp_path: Path, compress: bool) -> None:
    data = idx_bytes(np.zeros((4, 3, 3), dtype=np.uint8))[:-5]
    path = tmp_path / "short.idx"
    path.write_bytes(gzip.compress(data) if compress else data)
    with pytest.raises(IdxError, match=r"truncated: the data needs 36 bytes, the file holds 31"):
        read_idx(path)
    # the first item is complete, so a limited read still succeeds
    assert read_idx(path, limit=1).shape == (1, 3, 3)


def test_truncated_header_and_cut_gzip_stream(tmp_path: Path) -> None:
    (tmp_path / "h").write_bytes(bytes([0, 0, 0x08, 3, 0, 0]))
    with pytest.raises(IdxError, match="truncated: the dimensions needs 12 bytes"):
        read_idx(tmp_path / "h")
    whole = gzip.compress(idx_bytes(np.zeros((50, 9, 9), dtype=np.uint8)))
    (tmp_path / "g").write_bytes(whole[: len(whole) - 12])  # the stream ends early
    with pytest.raises(IdxError, match="corrupt gzip stream while reading the data"):
        read_idx(tmp_path / "g")
    (tmp_path / "t").write_bytes(whole[: len(whole) - 4])  # only the gzip trailer is cut
    with pytest.raises(IdxError, match="corrupt gzip stream after the data"):
        read_idx(tmp_path / "t")


def test_trailing_bytes_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "long.idx"
    path.write_bytes(idx_bytes(np.zeros((2, 2), dtype=np.uint8)) + b"junk")
    with pytest.raises(IdxError, match="4 trailing byte"):
        read_idx(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(IdxError, match="file not found"):
        read_idx(tmp_path / "nope.gz")


def test_count_mismatch_names_both_files(
    tmp_path: Path, pair: tuple[Path, Path, np.ndarray, np.ndarray]
) -> None:
    images_file, _, _, labels = pair
    short = write_idx(tmp_path / "short-labels", labels[:-1])
    with pytest.raises(IdxError, match=r"holds 11 labels but images-idx3-ubyte\.gz holds 12"):
        read_idx_pair(images_file, short)
    with pytest.raises(IdxError, match="holds 11 labels"):  # checked before limit applies
        import_idx(images_file, short, tmp_path / "out", limit=2)
    assert not (tmp_path / "out").exists()


def test_pair_shape_and_type_checks(
    tmp_path: Path, pair: tuple[Path, Path, np.ndarray, np.ndarray]
) -> None:
    images_file, labels_file, images, _ = pair
    with pytest.raises(IdxError, match=r"images must have shape \(N, H, W\)"):
        read_idx_pair(labels_file, labels_file)
    with pytest.raises(IdxError, match="labels must have one dimension"):
        read_idx_pair(images_file, images_file)
    wide = write_idx(tmp_path / "wide", images.astype(">i4"))
    with pytest.raises(IdxError, match=r"unsigned bytes \(type 0x08\)"):
        read_idx_pair(wide, labels_file)


def test_non_empty_destination_is_left_alone(
    tmp_path: Path, pair: tuple[Path, Path, np.ndarray, np.ndarray]
) -> None:
    images_file, labels_file, _, _ = pair
    dest = tmp_path / "data"
    dest.mkdir()
    (dest / "mine.txt").write_text("precious")
    with pytest.raises(DestinationNotEmptyError, match="not empty") as info:
        import_idx(images_file, labels_file, dest)
    assert isinstance(info.value, FileExistsError)
    assert [p.name for p in dest.iterdir()] == ["mine.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["data", images_file.name, labels_file.name]
    )
    with pytest.raises(DestinationNotEmptyError, match="exists and is not a folder"):
        import_idx(images_file, labels_file, dest / "mine.txt")


def test_a_failed_write_leaves_no_temporary_folder(
    tmp_path: Path,
    pair: tuple[Path, Path, np.ndarray, np.ndarray],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    images_file, labels_file, _, _ = pair

    def boom(*args: object, **kwargs: object) -> int:
        raise OSError("disk full")

    monkeypatch.setattr("flywheel.datasets.idx.write_png_folder", boom)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(OSError, match="disk full"):
        import_idx(images_file, labels_file, out / "data")
    assert list(out.iterdir()) == []


def test_cli_import_idx(tmp_path: Path, pair: tuple[Path, Path, np.ndarray, np.ndarray]) -> None:
    images_file, labels_file, _, _ = pair
    runner = CliRunner()
    dest = tmp_path / "folder"
    args = ["data", "import-idx", str(images_file), str(labels_file), str(dest)]
    result = runner.invoke(app, [*args, "--limit", "5"])
    assert result.exit_code == 0, result.output
    assert "wrote 5 images" in result.output
    assert len(list(dest.rglob("*.png"))) == 5

    again = runner.invoke(app, args)  # the folder is no longer empty
    assert again.exit_code == 1
    assert "not empty" in again.output

    bad = runner.invoke(app, ["data", "import-idx", str(labels_file), str(labels_file), "x"])
    assert bad.exit_code == 1 and "images must have shape" in bad.output
    assert runner.invoke(app, [*args, "--limit", "0"]).exit_code == 2
