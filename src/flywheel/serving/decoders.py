"""Turning one request instance into one model input row, chosen by the model card's task.

The server never knows what an instance looks like: it asks the decoder registered for the
served model's ``card.task``. A later model family (text strings, tabular records) plugs in
with :func:`register_decoder` and a factory; nothing else in the server changes.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from flywheel.data.images import (
    InputError,
    PreprocessingSpec,
    decode_image,
    normalise,
    preprocess_bytes,
    unit_array_from_nested,
)
from flywheel.data.png import encode_png
from flywheel.errors import RegistryError
from flywheel.registry import ModelCard


@dataclass(frozen=True)
class StoredInstance:
    """An instance as it is kept on disk (feedback): its bytes and the file suffix they need."""

    data: bytes
    suffix: str


class InstanceDecoder(Protocol):
    def decode(self, instance: Any) -> np.ndarray:
        """One model input row (no batch axis); raises :class:`InputError` saying why not."""
        ...

    def probe(self, n: int) -> np.ndarray:
        """A batch of ``n`` valid inputs, used to warm a model before it serves."""
        ...

    def to_stored(self, instance: Any) -> StoredInstance:
        """The instance in the form the training data keeps it (an image file for images)."""
        ...


DecoderFactory = Callable[[ModelCard, PreprocessingSpec], InstanceDecoder]


_IMAGE_SHAPE_HELP = (
    'an image instance is {"b64": "<base64 PNG/JPEG>"} or a nested list of 0..255 pixels'
)
# (H, W) or (C, H, W); anything deeper is a shape error, found before numpy sees it.
_MAX_DEPTH = 3


def _check_numbers(values: Any, depth: int = 0) -> None:
    """numpy would quietly turn ``"12"`` or ``True`` into a pixel; reject them by name."""
    if isinstance(values, list):
        if depth >= _MAX_DEPTH:
            raise InputError(f"pixel array is nested deeper than {_MAX_DEPTH} levels")
        for item in values:
            _check_numbers(item, depth + 1)
        return
    if isinstance(values, bool) or not isinstance(values, int | float):
        raise InputError(f"pixel values must be numbers, got {type(values).__name__}")
    if isinstance(values, float) and not math.isfinite(values):
        raise InputError("pixel array contains NaN or Inf")


class ImageDecoder:
    """``{"b64": ...}`` (encoded PNG/JPEG) or raw 0..255 pixels, through flywheel.data.images."""

    def __init__(self, card: ModelCard, spec: PreprocessingSpec) -> None:
        self.spec = spec

    def _image_bytes(self, instance: dict[str, Any]) -> bytes:
        if set(instance) != {"b64"} or not isinstance(instance["b64"], str):
            raise InputError(_IMAGE_SHAPE_HELP)
        try:
            return base64.b64decode(instance["b64"], validate=True)
        except (binascii.Error, ValueError):
            raise InputError("b64 is not valid base64") from None

    def _unit_pixels(self, instance: list[Any]) -> np.ndarray:
        _check_numbers(instance)
        try:
            return unit_array_from_nested(instance, self.spec.size, self.spec.channels)
        except OverflowError:
            raise InputError("pixel values must lie in 0..255") from None

    def decode(self, instance: Any) -> np.ndarray:
        if isinstance(instance, dict):
            return preprocess_bytes(self._image_bytes(instance), self.spec)
        if isinstance(instance, list):
            return normalise(self._unit_pixels(instance), self.spec)
        raise InputError(f"{_IMAGE_SHAPE_HELP}, got {type(instance).__name__}")

    def probe(self, n: int) -> np.ndarray:
        unit = np.full((n, *self.spec.input_shape), 0.5, dtype=np.float32)
        return normalise(unit, self.spec)

    def to_stored(self, instance: Any) -> StoredInstance:
        if isinstance(instance, dict):
            data = self._image_bytes(instance)
            image = decode_image(data)
            if image.format == "PNG":
                return StoredInstance(data, ".png")
            # Kept losslessly as PNG: the image folder the training data lives in holds PNGs.
            out = io.BytesIO()
            image.save(out, format="PNG")
            return StoredInstance(out.getvalue(), ".png")
        if isinstance(instance, list):
            unit = self._unit_pixels(instance)
            pixels = np.rint(unit * 255.0).astype(np.uint8)
            hwc = pixels[0] if pixels.shape[0] == 1 else pixels.transpose(1, 2, 0)
            return StoredInstance(encode_png(hwc), ".png")
        raise InputError(f"{_IMAGE_SHAPE_HELP}, got {type(instance).__name__}")


_FACTORIES: dict[str, DecoderFactory] = {"image_classification": ImageDecoder}


def register_decoder(task: str, factory: DecoderFactory) -> None:
    _FACTORIES[task] = factory


def decoder_for(card: ModelCard, spec: PreprocessingSpec) -> InstanceDecoder:
    factory = _FACTORIES.get(card.task)
    if factory is None:
        raise RegistryError(
            f"{card.version}: no request decoder for task {card.task!r} "
            f"(known: {sorted(_FACTORIES)})"
        )
    return factory(card, spec)
