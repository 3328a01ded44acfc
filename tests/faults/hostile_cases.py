"""The hostile request bodies each family is attacked with: bodies no family accepts, then
the image, text and tabular cases, each with the statuses it may get."""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np
from PIL import Image
from tests.faults.hostile import (
    Case,
    case,
    encoded,
    jpeg_claiming,
    png_by_hand,
    text_bomb_chunk,
)

MAX_INSTANCES = 32
TEN_MB = 10 * 1024 * 1024

# Bodies no family accepts.
COMMON = [
    case("invalid utf-8", b'{"instances": ["\xff\xfe\xfd"]}', 400),
    case("utf-16 body", '{"instances": ["hi"]}'.encode("utf-16"), 400),
    case("deep nesting", b'{"instances": ' + b"[" * 50_000 + b"]" * 50_000 + b"}", 400),
    case("NaN literal", b'{"instances": [NaN]}', 400),
    case("Infinity literal", b'{"instances": [-Infinity]}', 400),
    case("1e309 literal", b'{"instances": [1e309]}', 400),
    case("5000-digit integer", b'{"instances": [' + b"9" * 5000 + b"]}", 400),
    case("not an object", b"[1, 2, 3]", 400),
    case("10 MB body", json.dumps({"instances": ["a" * TEN_MB]}).encode(), 413),
]


def b64(data: bytes) -> dict[str, Any]:
    return {"instances": [{"b64": base64.b64encode(data).decode()}]}


def image_cases() -> list[Case]:
    good = encoded(
        Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64), "uint8")), "PNG"
    )
    grey16 = (np.arange(64).reshape(8, 8) * 1000).astype(np.uint16)
    refused = {
        "bomb 11000x11000 1-bit PNG": png_by_hand(11000, 11000),
        "PNG header claiming 100000x100000": png_by_hand(100_000, 100_000, rows=b"x" * 20),
        "one pixel over the limit": png_by_hand(4097, 4096, rows=b"x" * 20),
        "JPEG claiming 60000x60000": jpeg_claiming(60_000, 60_000),
        "zTXt bomb (64 MB of text)": png_by_hand(8, 8, depth=8, extra=text_bomb_chunk(64)),
        "GIF (not validated)": encoded(Image.new("L", (8, 8)), "GIF"),
        "BMP": encoded(Image.new("L", (8, 8)), "BMP"),
        "TIFF": encoded(Image.new("L", (8, 8)), "TIFF"),
        "WebP": encoded(Image.new("L", (8, 8)), "WEBP"),
        "EPS (would run Ghostscript)": b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\n",
        "truncated PNG": good[: len(good) * 3 // 4],
        "PNG with a bad header checksum": good[:29] + b"\x00\x00\x00\x00" + good[33:],
        "PNG with corrupt pixel data": png_by_hand(
            64, 64, depth=8, rows=b"\x78\x9c" + b"\xff" * 99
        ),
        "random bytes": bytes(np.random.default_rng(1).integers(0, 256, 1000, "uint8")),
        "empty image": b"",
    }
    accepted = {
        "palette PNG": encoded(Image.new("P", (8, 8)), "PNG"),
        "palette PNG with transparency": encoded(Image.new("P", (8, 8)), "PNG", transparency=0),
        "16-bit grey PNG": encoded(Image.fromarray(grey16), "PNG"),
        "RGBA PNG": encoded(Image.new("RGBA", (8, 8), (1, 2, 3, 4)), "PNG"),
        "LA PNG": encoded(Image.new("LA", (8, 8)), "PNG"),
        "1-bit PNG": encoded(Image.new("1", (8, 8)), "PNG"),
        "CMYK JPEG": encoded(Image.new("CMYK", (8, 8), (0, 128, 255, 0)), "JPEG"),
    }
    pixels = [[0] * 8] * 8
    heavy = {"b64": base64.b64encode(png_by_hand(4000, 4000, depth=8)).decode()}
    return [
        *COMMON,
        *(case(name, b64(data), 400) for name, data in refused.items()),
        *(case(name, b64(data), 200) for name, data in accepted.items()),
        case("not base64", {"instances": [{"b64": "%%%"}]}, 400),
        case("b64 not a string", {"instances": [{"b64": 7}]}, 400),
        case("1e300 pixel", {"instances": [[[1e300] * 8, *pixels[1:]]]}, 400),
        case("too many instances", {"instances": [pixels] * (MAX_INSTANCES + 1)}, 413),
        case("5 x 16 M pixels in one request", {"instances": [heavy] * 5}, 400),
        case(
            "feedback bomb",
            {"instance": b64(png_by_hand(11000, 11000))["instances"][0], "label": "pos"},
            400,
            path="/v1/feedback",
        ),
        case(
            "feedback label", {"instance": pixels, "label": "x" * 10_000}, 400, path="/v1/feedback"
        ),
    ]


def text_cases() -> list[Case]:
    accepted = {
        "NUL and control characters": "fine\u0000day\u0007\u001b[31m",
        "NFKC expansion (2000 x U+FDFA)": "\ufdfa" * 2000,
        "entity soup": "&amp;#36;" * 1000,
        "mixed scripts": "good 好 день ☃ " * 600,
    }
    return [
        *COMMON,
        case("lone surrogate", b'{"instances": ["bad \\ud800 text"]}', 400),
        case("over max_text_chars", {"instances": ["a " * 6000]}, 400),
        case("over max_text_bytes", {"instances": ["\U0001f600" * 6000]}, 400),
        case("empty text", {"instances": [""]}, 400),
        case("whitespace only", {"instances": [" \n\t "]}, 400),
        case("number instance", {"instances": [1e300]}, 400),
        case("null instance", {"instances": [None]}, 400),
        case("text not a string", {"instances": [{"text": 5}]}, 400),
        case("extra field", {"instances": [{"text": "a", "path": "/etc/passwd"}]}, 400),
        case("title not a string", {"instances": [{"text": "a", "title": ["x"]}]}, 400),
        case("too many instances", {"instances": ["a"] * (MAX_INSTANCES + 1)}, 413),
        case("with a title", {"instances": [{"text": "good day", "title": "news"}]}, 200),
        *(case(name, {"instances": [text]}, 200) for name, text in accepted.items()),
        case(
            "feedback surrogate",
            b'{"instance": "\\udfff", "label": "pos"}',
            400,
            path="/v1/feedback",
        ),
    ]


def tabular_cases() -> list[Case]:
    row = {"size": 12.0, "rooms": 2, "kind": "flat", "city": "north"}

    def rec(**changes: Any) -> dict[str, Any]:
        return {"instances": [{**row, **changes}]}

    missing = {"instances": [{k: v for k, v in row.items() if k != "rooms"}]}
    return [
        *COMMON,
        case("1e300", rec(size=1e300), 400),
        case("1e300 as text", rec(size="1e300"), 400),
        case("output overflows float32", rec(size=3e38, rooms=3e38), 422),
        case("unknown category", rec(kind="castle"), 400),
        case("unknown category, nullable column", rec(city="atlantis"), 200),
        case("category as a number", rec(kind=5), 400),
        case("missing column", missing, 400),
        case("extra column", rec(price=1.0), 400),
        case("10 000-character column name", rec(**{"x" * 10_000: 1}), 400),
        case("null, non-nullable", rec(size=None), 400),
        case("null, nullable", rec(city=None), 200),
        case("bool as a number", rec(rooms=True), 400),
        case("object as a value", rec(size={"$gt": 1}), 400),
        case("numeric text", rec(size=" 12.5 "), 200),
        case("empty record", {"instances": [{}]}, 400),
        case("record not an object", {"instances": [[1, 2]]}, 400),
        case("too many instances", {"instances": [row] * (MAX_INSTANCES + 1)}, 413),
        case(
            "feedback on a regressor", {"instance": row, "label": "pos"}, 400, path="/v1/feedback"
        ),
    ]
