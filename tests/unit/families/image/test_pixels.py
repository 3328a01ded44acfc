"""The image preprocessing path under a server's limits: format allow-list and pixel limit
on the header, conversion of modes the model was not trained on, the stored feedback form."""

from __future__ import annotations

import base64
import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from flywheel.core.errors import InputError
from flywheel.families.base import InstanceLimits
from flywheel.families.image.family import ImageFamily
from flywheel.families.image.pixels import PreprocessingSpec, decode_image, to_model_mode

SPEC = PreprocessingSpec(8, "L", (0.0,), (1.0,), ("a", "b"))
LIMITS = InstanceLimits(1000, ("PNG", "JPEG"), None, 100, 400)


def encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def header_only_png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"junk") + chunk(b"IEND", b"")
    )


def encode(data: bytes, limits: InstanceLimits | None = LIMITS) -> np.ndarray:
    return ImageFamily().encode([{"b64": base64.b64encode(data).decode()}], SPEC, limits)


def test_the_pixel_limit_is_checked_on_the_header_before_any_decoding() -> None:
    # The pixel data is junk: a decoder that ran would say "corrupt", not "too many pixels".
    with pytest.raises(InputError, match="32x32 pixels, more than the limit of 1000"):
        encode(header_only_png(32, 32))
    with pytest.raises(InputError, match="truncated or corrupt"):
        encode(header_only_png(30, 30))


def test_one_request_s_images_share_a_pixel_budget() -> None:
    limits = InstanceLimits(1000, ("PNG",), None, 100, 400, max_request_pixels=2500)
    good = {"b64": base64.b64encode(encoded(Image.new("L", (30, 30)), "PNG")).decode()}
    with pytest.raises(InputError, match="instance 2: the request's images hold more than 2500"):
        ImageFamily().encode([good] * 3, SPEC, limits)
    assert ImageFamily().encode([good] * 2, SPEC, limits).shape == (2, 1, 8, 8)


def test_only_the_allowed_formats_decoders_run() -> None:
    gif = encoded(Image.new("L", (8, 8)), "GIF")
    with pytest.raises(InputError, match="not a recognised image format; send PNG/JPEG"):
        encode(gif)
    assert encode(gif, None).shape == (1, 1, 8, 8)  # files the pipeline reads: any format
    with pytest.raises(InputError, match="mode RGB is not accepted"):
        decode_image(encoded(Image.new("RGB", (8, 8)), "PNG"), modes=("L",))


def test_sixteen_bit_grey_is_scaled_not_clipped() -> None:
    wide = np.array([[0, 257, 32896, 65535]], dtype=np.uint16)
    image = Image.open(io.BytesIO(encoded(Image.fromarray(wide), "PNG")))
    assert np.asarray(to_model_mode(image, "L")).tolist() == [[0, 1, 128, 255]]


@pytest.mark.parametrize(
    ("image", "fmt"),
    [
        (Image.new("CMYK", (8, 8), (0, 128, 255, 0)), "JPEG"),
        (Image.new("P", (8, 8)), "PNG"),
        (Image.new("RGBA", (8, 8), (200, 10, 10, 128)), "PNG"),
        (Image.new("1", (8, 8), 1), "PNG"),
    ],
)
def test_other_modes_are_converted(image: Image.Image, fmt: str) -> None:
    x = encode(encoded(image, fmt))
    assert x.shape == (1, 1, 8, 8) and np.isfinite(x).all()


def test_unconvertible_modes_are_refused_by_name() -> None:
    with pytest.raises(InputError, match="cannot convert a LAB image to L"):
        to_model_mode(Image.new("LAB", (4, 4)), "L")
    with pytest.raises(InputError, match="32-bit float"):
        to_model_mode(Image.new("F", (4, 4)), "L")


def test_feedback_is_stored_as_a_png_written_here_in_the_model_mode() -> None:
    sent = encoded(Image.new("RGBA", (5, 3), (255, 255, 255, 255)), "PNG")
    stored = ImageFamily().stored_form({"b64": base64.b64encode(sent).decode()}, SPEC, LIMITS)
    image = Image.open(io.BytesIO(stored.data))
    assert stored.suffix == ".png" and stored.data != sent
    assert (image.format, image.mode, image.size) == ("PNG", "L", (5, 3))
    assert np.asarray(image).min() == 255
