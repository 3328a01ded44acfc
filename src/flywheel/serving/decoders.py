"""Request instances to a model input batch, chosen by the served model's task.

Decoding itself belongs to the model family (:meth:`flywheel.families.Family.encode`, the
same code ``flywheel predict`` runs), so the server never re-implements preprocessing. This
module adds what only a server needs: inputs are now hostile, so anything the family raises
while reading them is the client's error (a 4xx), never a crash; a probe batch to warm a
new model; and the on-disk form of an instance for the feedback inbox. A new family works
with :class:`FamilyDecoder` as it is; one that wants stricter checks or a nicer stored form
(images are kept as PNG files) registers a subclass with :func:`register_decoder`.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from flywheel.data.images import InputError, decode_image
from flywheel.data.png import encode_png
from flywheel.families import Family


@dataclass(frozen=True)
class StoredInstance:
    """An instance as it is kept on disk (feedback): its bytes and the file suffix they need."""

    data: bytes
    suffix: str


class FamilyDecoder:
    """Any family: its own ``encode`` with client errors contained, JSON for storage."""

    def __init__(self, family: Family, spec: Any) -> None:
        self.family = family
        self.spec = spec

    def check(self, index: int, instance: Any) -> None:
        """Reject, by index, what the family would accept silently or crash on."""

    def decode(self, instances: list[Any]) -> np.ndarray:
        """One model input batch for ``instances``; :class:`InputError` naming the bad one."""
        for i, instance in enumerate(instances):
            self.check(i, instance)
        try:
            return np.ascontiguousarray(self.family.encode(instances, self.spec))
        except InputError:
            raise
        except (ValueError, TypeError, OverflowError, KeyError, IndexError) as err:
            # Family code was written for files it made itself; from a client, any failure
            # to read an instance is that instance's fault.
            raise InputError(f"cannot read instances: {err}") from None

    def probe(self, n: int) -> np.ndarray:
        """A valid batch of ``n`` inputs, to warm a model before it serves."""
        return np.ascontiguousarray(self.family.example_input(self.spec, n).numpy())

    def to_stored(self, instance: Any) -> StoredInstance:
        return StoredInstance(json.dumps(instance).encode(), ".instance.json")


_IMAGE_HELP = 'expected {"b64": <base64 image>} or a nested list of 0..255 pixels'
_MAX_DEPTH = 3  # (H, W) or (C, H, W)


def _check_pixels(values: Any, depth: int = 0) -> None:
    if isinstance(values, list):
        if depth >= _MAX_DEPTH:
            raise InputError(f"pixel array is nested deeper than {_MAX_DEPTH} levels")
        for item in values:
            _check_pixels(item, depth + 1)
        return
    # numpy would quietly read "12" or true as a pixel, and a huge int overflows.
    if isinstance(values, bool) or not isinstance(values, int | float):
        raise InputError(f"pixel values must be numbers, got {type(values).__name__}")
    if isinstance(values, float) and not math.isfinite(values):
        raise InputError("pixel array contains NaN or Inf")
    if not 0 <= values <= 255:
        raise InputError("pixel values must lie in 0..255")


class ImageDecoder(FamilyDecoder):
    """``{"b64": ...}`` (encoded PNG/JPEG) or raw 0..255 pixels; kept as PNG files."""

    def check(self, index: int, instance: Any) -> None:
        try:
            if isinstance(instance, list):
                _check_pixels(instance)
            elif not (isinstance(instance, dict) and set(instance) == {"b64"}):
                raise InputError(f"{_IMAGE_HELP}, got {type(instance).__name__}")
        except InputError as err:
            raise InputError(f"instance {index}: {err}") from None

    def to_stored(self, instance: Any) -> StoredInstance:
        if isinstance(instance, dict):
            try:
                data = base64.b64decode(instance["b64"], validate=True)
            except (binascii.Error, ValueError, TypeError):
                raise InputError("'b64' is not valid base64") from None
            image = decode_image(data)
            if image.format == "PNG":
                return StoredInstance(data, ".png")
            # Re-encoded losslessly: the image folder the training data lives in holds PNGs.
            out = io.BytesIO()
            image.save(out, format="PNG")
            return StoredInstance(out.getvalue(), ".png")
        pixels = np.rint(np.asarray(instance, dtype=np.float64)).astype(np.uint8)
        if pixels.ndim == 3:
            pixels = pixels[0] if pixels.shape[0] == 1 else pixels.transpose(1, 2, 0)
        return StoredInstance(encode_png(pixels), ".png")


DecoderFactory = Callable[[Family, Any], FamilyDecoder]
_DECODERS: dict[str, DecoderFactory] = {"image_classification": ImageDecoder}


def register_decoder(task: str, factory: DecoderFactory) -> None:
    _DECODERS[task] = factory


def decoder_for(task: str, family: Family, spec: Any) -> FamilyDecoder:
    return _DECODERS.get(task, FamilyDecoder)(family, spec)
