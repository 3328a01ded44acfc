"""The one image preprocessing path, shared by training, export, ``flywheel predict`` and serving.

Pixels are decoded with Pillow, converted to the configured mode, resized to a square and
scaled to [0, 1]; :func:`normalise` then applies the per-channel statistics learnt on the
training split. Nothing here knows where the bytes came from.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from flywheel.core.errors import InputError
from flywheel.families.base import InstanceLimits

log = logging.getLogger(__name__)

# Decompression bombs are a denial of service for the server; no image this pipeline
# handles legitimately has more pixels than this. Checked on the header, before decoding.
MAX_PIXELS = 64_000_000


@dataclass(frozen=True)
class PreprocessingSpec:
    """Everything needed to turn an image into the model's input, saved beside every model."""

    size: int
    mode: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    labels: tuple[str, ...]

    @property
    def channels(self) -> int:
        return 1 if self.mode == "L" else 3

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.channels, self.size, self.size)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> PreprocessingSpec:
        raw = json.loads(Path(path).read_text())
        return cls(
            size=int(raw["size"]),
            mode=str(raw["mode"]),
            mean=tuple(float(v) for v in raw["mean"]),
            std=tuple(float(v) for v in raw["std"]),
            labels=tuple(str(v) for v in raw["labels"]),
        )


class PixelBudget:
    """The pixels one request may still decode (``serve.max_request_pixels``)."""

    def __init__(self, total: int) -> None:
        self.total = self.remaining = total

    def spend(self, width: int, height: int) -> None:
        if width * height > self.remaining:
            raise InputError(
                f"the request's images hold more than {self.total} pixels in all "
                "(serve.max_request_pixels); send fewer or smaller images per request"
            )
        self.remaining -= width * height


def decode_image(
    data: bytes,
    max_pixels: int = MAX_PIXELS,
    formats: Sequence[str] | None = None,
    modes: Sequence[str] | None = None,
    budget: PixelBudget | None = None,
) -> Image.Image:
    """The decoded image. Only the decoders of ``formats`` (None: all) are tried, and the
    header's size and mode are checked against ``max_pixels`` and ``modes`` before any
    pixel is decoded, so a small file that would inflate to gigabytes is refused first."""
    try:
        image = Image.open(io.BytesIO(data), formats=None if formats is None else list(formats))
    except UnidentifiedImageError:
        # Pillow's own message names an in-memory buffer address: useless to a client.
        accepted = f"; send {'/'.join(formats)}" if formats else ""
        raise InputError(f"cannot decode image: not a recognised image format{accepted}") from None
    except Image.DecompressionBombError:
        raise InputError(f"image has more pixels than the limit of {max_pixels}") from None
    except Exception as err:  # any failure on untrusted bytes is the sender's
        log.debug("image header refused: %r", err)
        raise InputError("cannot decode image: its header is corrupt") from None
    if image.width * image.height > max_pixels:
        raise InputError(
            f"image is {image.width}x{image.height} pixels, more than the limit of {max_pixels}"
        )
    if modes is not None and image.mode not in modes:
        raise InputError(f"image mode {image.mode} is not accepted; send one of {list(modes)}")
    if budget is not None:
        budget.spend(image.width, image.height)
    try:
        image.load()
    except Exception as err:  # plugins raise many types on malformed data
        log.debug("image data refused: %r", err)
        raise InputError(
            f"cannot decode image: the {image.format} data is truncated or corrupt"
        ) from None
    return image


def decode_client_image(
    data: bytes, limits: InstanceLimits | None, budget: PixelBudget | None = None
) -> Image.Image:
    """:func:`decode_image` under a server's limits (None: a file the pipeline read)."""
    if limits is None:
        return decode_image(data)
    return decode_image(
        data, limits.max_image_pixels, limits.image_formats, limits.image_modes, budget
    )


_ALPHA_OR_PALETTE = frozenset({"P", "PA", "LA", "La", "RGBA", "RGBa"})
# Pillow's convert() clips 16-bit samples to 255 instead of scaling them.
_WIDE_GREY = frozenset({"I", "I;16", "I;16L", "I;16B", "I;16N"})


def to_model_mode(image: Image.Image, mode: str) -> Image.Image:
    """``image`` as 8-bit ``mode`` (L or RGB), full size: 16-bit grey scaled to 8 bits,
    transparency flattened onto black (as palette/alpha images render), other modes
    (CMYK, YCbCr, 1...) converted by Pillow."""
    if image.mode in _WIDE_GREY:
        wide = np.clip(np.asarray(image).astype(np.int32, copy=False), 0, 65535)
        image = Image.fromarray(((wide + 128) // 257).astype(np.uint8), "L")
    elif image.mode == "F":
        raise InputError("32-bit float images are not supported; send 8- or 16-bit pixels")
    try:
        if image.mode in _ALPHA_OR_PALETTE:
            image = image.convert("RGBA")
            background = Image.new("RGBA", image.size, (0, 0, 0, 255))
            image = Image.alpha_composite(background, image)
        return image.convert(mode)
    except ValueError:
        raise InputError(f"cannot convert a {image.mode} image to {mode}") from None


def to_unit_array(image: Image.Image, size: int, mode: str) -> np.ndarray:
    """``(C, size, size)`` float32 in [0, 1]."""
    image = to_model_mode(image, mode)
    if image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.BILINEAR)
    pixels = np.asarray(image, dtype=np.float32) / 255.0
    pixels = pixels[None, :, :] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
    return np.ascontiguousarray(pixels)


def unit_array_from_nested(values: object, size: int, channels: int) -> np.ndarray:
    """A nested list of raw 0..255 pixel values, ``(H, W)`` or ``(C, H, W)``, as a unit array."""
    try:
        arr = np.asarray(values, dtype=np.float32)
    except (TypeError, ValueError):
        raise InputError("pixel array must be a rectangular nested list of numbers") from None
    if arr.ndim == 2 and channels == 1:
        arr = arr[None, :, :]
    expected = (channels, size, size)
    if arr.shape != expected:
        raise InputError(f"pixel array has shape {list(arr.shape)}, expected {list(expected)}")
    if not np.isfinite(arr).all():
        raise InputError("pixel array contains NaN or Inf")
    if arr.min() < 0 or arr.max() > 255:
        raise InputError("pixel values must lie in 0..255")
    return arr / 255.0


def normalise(unit: np.ndarray, spec: PreprocessingSpec) -> np.ndarray:
    """Apply training-split statistics to a ``(..., C, H, W)`` unit array."""
    mean = np.asarray(spec.mean, dtype=np.float32).reshape(-1, 1, 1)
    std = np.asarray(spec.std, dtype=np.float32).reshape(-1, 1, 1)
    return ((unit - mean) / std).astype(np.float32)


def preprocess_bytes(
    data: bytes,
    spec: PreprocessingSpec,
    limits: InstanceLimits | None = None,
    budget: PixelBudget | None = None,
) -> np.ndarray:
    image = decode_client_image(data, limits, budget)
    return normalise(to_unit_array(image, spec.size, spec.mode), spec)


def channel_stats(unit: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of an ``(N, C, H, W)`` array, rounded for stable JSON."""
    mean = unit.mean(axis=(0, 2, 3))
    std = unit.std(axis=(0, 2, 3))
    # A constant channel would divide by zero; 1.0 leaves it centred but unscaled.
    std = np.where(std > 1e-6, std, 1.0)
    return tuple(round(float(v), 6) for v in mean), tuple(round(float(v), 6) for v in std)
