"""A small folder of 'real photo' files made by code: JPEG and PNG, every Pillow mode the
image family accepts (RGB, L, RGBA, P), odd sizes, a corrupt file and a byte-identical copy.

Classes are stripe orientations, which a horizontal flip keeps and colour does not decide,
so the training augmentation (random flips and crops) and grey conversion are both fair.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

LABELS = ("horizontal", "vertical")
MODES = ("RGB", "L", "RGBA", "P")


def stripes(label: str, width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """An RGB array of noisy stripes in random colours; the orientation is the class."""
    length = height if label == "horizontal" else width
    # Three to five stripe pairs per image, so they survive the resize to a small square.
    period = max(2, length // int(rng.integers(3, 6)))
    axis = np.arange(length)
    band = ((axis + rng.integers(period)) // max(1, period // 2)) % 2
    mask = band[:, None] if label == "horizontal" else band[None, :]
    mask = np.broadcast_to(mask, (height, width))
    fg, bg = rng.integers(130, 256, 3), rng.integers(0, 110, 3)
    rgb = np.where(mask[..., None] == 1, fg, bg).astype(np.float64)
    rgb += rng.normal(0.0, 18.0, rgb.shape)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def encode(rgb: np.ndarray, mode: str, fmt: str) -> bytes:
    image = Image.fromarray(rgb, "RGB")
    if mode == "RGBA":
        image = image.convert("RGBA")
        image.putalpha(255)
    elif mode == "P":
        image = image.convert("P", palette=Image.Palette.ADAPTIVE, colors=32)
    elif mode == "L":
        image = image.convert("L")
    if fmt == "JPEG" and mode in ("RGBA", "P"):
        image = image.convert("RGB")  # JPEG stores neither alpha nor palettes
    out = io.BytesIO()
    image.save(out, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return out.getvalue()


def write_photo_folder(root: Path, per_class: int = 40, seed: int = 0) -> list[Path]:
    """``per_class`` files per label in mixed formats, modes and sizes; returns their paths."""
    rng = np.random.default_rng(seed)
    written = []
    for label in LABELS:
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            width, height = (int(v) for v in rng.integers(20, 97, 2))
            mode = MODES[i % len(MODES)]
            fmt = "JPEG" if i % 3 == 0 else "PNG"
            path = root / label / f"{i:03d}.{'jpg' if fmt == 'JPEG' else 'png'}"
            path.write_bytes(encode(stripes(label, width, height, rng), mode, fmt))
            written.append(path)
    return written


def add_defects(root: Path) -> dict[str, str]:
    """A truncated JPEG and a byte-identical copy filed under the other class; returns their
    paths (relative to ``root``) and what is wrong with each."""
    good = (root / "horizontal" / "000.jpg").read_bytes()
    (root / "horizontal" / "broken.jpg").write_bytes(good[: len(good) // 3])
    (root / "vertical" / "copy.jpg").write_bytes(good)
    return {"horizontal/broken.jpg": "unreadable", "vertical/copy.jpg": "duplicate"}
