"""The default dataset: scikit-learn's bundled handwritten digits as a PNG image folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from flywheel.datasets.png import write_png_folder

DIGITS_LABELS = tuple(str(i) for i in range(10))


def digits_images() -> tuple[np.ndarray, np.ndarray]:
    """The 1,797 8x8 images scaled from 0..16 to 0..255, and their integer labels."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    pixels = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)
    return pixels, bunch.target.astype(np.int64)


def materialise_digits(target: Path, *, overwrite: bool = False) -> int:
    """Write ``target/<label>/<index>.png``; returns the number of files written.

    Refuses to touch a non-empty folder unless ``overwrite``: it may hold a user's data.
    """
    target = Path(target)
    if target.exists() and any(target.iterdir()) and not overwrite:
        raise FileExistsError(f"{target} is not empty; pass --force to rewrite the default dataset")
    pixels, labels = digits_images()
    return write_png_folder(target, pixels, [DIGITS_LABELS[label] for label in labels])
