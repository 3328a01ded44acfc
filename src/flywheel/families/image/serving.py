"""What only a server needs of the image family: strict checks on client instances and
the PNG files feedback is kept as (the training folder holds PNGs)."""

from __future__ import annotations

import base64
import binascii
import math
from typing import Any

import numpy as np

from flywheel.core.errors import InputError
from flywheel.datasets.png import encode_png
from flywheel.families.base import InstanceLimits, StoredInstance
from flywheel.families.image.pixels import PreprocessingSpec, decode_client_image, to_model_mode

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


def check_instance(index: int, instance: Any) -> None:
    try:
        if isinstance(instance, list):
            _check_pixels(instance)
        elif not (isinstance(instance, dict) and set(instance) == {"b64"}):
            raise InputError(f"{_IMAGE_HELP}, got {type(instance).__name__}")
    except InputError as err:
        raise InputError(f"instance {index}: {err}") from None


def b64_bytes(value: Any) -> bytes:
    if not isinstance(value, str):
        raise InputError("'b64' must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InputError("'b64' is not valid base64") from None


def stored_form(
    instance: Any, spec: PreprocessingSpec, limits: InstanceLimits | None
) -> StoredInstance:
    """Always a PNG written here, never the client's file: the model's mode at the sent
    size (16-bit scaled, transparency flattened), the form the training folder holds."""
    if isinstance(instance, dict):
        image = to_model_mode(
            decode_client_image(b64_bytes(instance.get("b64")), limits), spec.mode
        )
        pixels = np.asarray(image, dtype=np.uint8)
    else:
        pixels = np.rint(np.asarray(instance, dtype=np.float64)).astype(np.uint8)
        if pixels.ndim == 3:
            pixels = pixels[0] if pixels.shape[0] == 1 else pixels.transpose(1, 2, 0)
    return StoredInstance(encode_png(np.ascontiguousarray(pixels)), ".png")
