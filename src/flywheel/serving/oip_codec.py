"""Open Inference Protocol (KServe v2 / Triton REST) bodies to numpy tensors and back.

The JSON form follows KServe's ``required_api.md`` / the OIP ``inference_rest.md``: each
tensor has a name, a datatype, a shape and row-major ``data`` (nested or flat). The binary
form is Triton's ``binary_tensor_data`` extension, which tritonclient and KServe's client
use by default: the JSON header (``Inference-Header-Content-Length`` bytes long) is followed
by the tensors' raw little-endian bytes in the order the header lists them, each sized by
its ``parameters.binary_data_size``; a BYTES element is a 4-byte length and its bytes.

No maintained library parses this without its whole server (tritonclient only writes
requests; KServe's parser comes with its model server, whose pins conflict with ours), so
it is done here. Every malformed body is a :class:`RequestRejectedError` (400), never a
crash. Unknown keys and parameters are ignored, as the protocol asks.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from flywheel.serving.requests import RequestRejectedError, parse_json

HEADER_LENGTH = "inference-header-content-length"

# OIP datatype -> little-endian numpy dtype (BYTES: Python bytes objects).
DTYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype("?"),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
    "BYTES": np.dtype(object),
}
_MAX_DIMS = 8


def _reject(message: str, kind: str = "invalid_request") -> RequestRejectedError:
    return RequestRejectedError(400, kind, message)


@dataclass(frozen=True)
class Tensor:
    name: str
    datatype: str
    data: np.ndarray  # shaped as the request said; BYTES: an object array of bytes


@dataclass(frozen=True)
class InferRequest:
    id: str | None
    inputs: dict[str, Tensor]
    # Requested output names (None: all) and whether each goes back as binary.
    outputs: list[str] | None
    binary: dict[str, bool] = field(default_factory=dict)
    binary_default: bool = False


def split_body(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    """The JSON header and the binary tail of a request body."""
    if header_length is None:
        return body, b""
    try:
        n = int(header_length)
    except ValueError:
        n = -1
    if not 0 < n <= len(body):
        raise _reject(
            f"Inference-Header-Content-Length {header_length[:20]!r} is not a length within "
            f"the {len(body)}-byte body"
        )
    return body[:n], body[n:]


def _shape(name: str, raw: Any) -> tuple[int, ...]:
    ok = isinstance(raw, list) and len(raw) <= _MAX_DIMS
    if ok and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in raw):
        return tuple(raw)
    raise _reject(f"input {name!r}: shape must be a list of up to {_MAX_DIMS} sizes >= 0")


def decode_bytes_elements(name: str, raw: bytes) -> list[bytes]:
    out: list[bytes] = []
    offset = 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise _reject(f"input {name!r}: binary BYTES data ends inside an element length")
        (size,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + size > len(raw):
            raise _reject(f"input {name!r}: binary BYTES element {len(out)} is truncated")
        out.append(raw[offset : offset + size])
        offset += size
    return out


def encode_bytes_elements(items: list[bytes]) -> bytes:
    return b"".join(struct.pack("<I", len(b)) + b for b in items)


def _from_binary(name: str, datatype: str, shape: tuple[int, ...], raw: bytes) -> np.ndarray:
    if datatype == "BYTES":
        return np.array(decode_bytes_elements(name, raw) or [], dtype=object)
    expected = math.prod(shape) * DTYPES[datatype].itemsize
    if len(raw) != expected:
        raise _reject(
            f"input {name!r}: {len(raw)} binary bytes, shape {list(shape)} needs {expected}"
        )
    return np.frombuffer(raw, dtype=DTYPES[datatype])


def _bytes_element(name: str, value: Any) -> bytes:
    if isinstance(value, str):
        try:
            return value.encode("utf-8")
        except UnicodeEncodeError:
            raise _reject(f"input {name!r}: a BYTES string is not valid Unicode") from None
    raise _reject(f"input {name!r}: BYTES data must be strings, got {type(value).__name__}")


def _flat(name: str, data: Any) -> list[Any]:
    if not isinstance(data, list):
        return [data]
    if list not in set(map(type, data)):  # already flat: the common case, at C speed
        return data
    out: list[Any] = []
    stack = [(iter(data), 0)]
    while stack:  # iterative: a deeply nested list cannot exhaust the stack
        items, depth = stack[-1]
        item = next(items, stack)
        if item is stack:
            stack.pop()
        elif isinstance(item, list):
            if depth >= _MAX_DIMS:
                raise _reject(f"input {name!r}: data is nested deeper than {_MAX_DIMS} levels")
            stack.append((iter(item), depth + 1))
        else:
            out.append(item)
    return out


def _from_json(name: str, datatype: str, data: Any) -> np.ndarray:
    flat = _flat(name, data)
    if datatype == "BYTES":
        return np.array([_bytes_element(name, v) for v in flat] or [], dtype=object)
    # Exact types (JSON gives only these): bool is no number, a number no bool.
    if not set(map(type, flat)) <= ({bool} if datatype == "BOOL" else {int, float}):
        kind = "booleans" if datatype == "BOOL" else "numbers"
        raise _reject(f"input {name!r}: {datatype} data must be {kind}")
    with np.errstate(over="ignore"):
        try:
            return np.asarray(flat, dtype=DTYPES[datatype])
        except (OverflowError, ValueError):
            raise _reject(f"input {name!r}: a value does not fit {datatype}") from None


def _parameters(item: dict[str, Any]) -> dict[str, Any]:
    params = item.get("parameters")
    return params if isinstance(params, dict) else {}


def _tensor(spec: Any, tail: memoryview, offset: int) -> tuple[Tensor, int]:
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise _reject('every input must be an object with a "name"')
    name = spec["name"]
    datatype = spec.get("datatype")
    if datatype not in DTYPES:
        raise _reject(
            f"input {name!r}: datatype {str(datatype)[:20]!r} is not one of {list(DTYPES)}"
        )
    shape = _shape(name, spec.get("shape"))
    size = _parameters(spec).get("binary_data_size")
    if size is not None:
        if (
            not isinstance(size, int)
            or isinstance(size, bool)
            or not 0 <= size <= len(tail) - offset
        ):
            raise _reject(f"input {name!r}: binary_data_size {str(size)[:20]} overruns the body")
        array = _from_binary(name, datatype, shape, bytes(tail[offset : offset + size]))
        offset += size
    elif "data" in spec:
        array = _from_json(name, datatype, spec["data"])
    else:
        raise _reject(f'input {name!r} has neither "data" nor parameters.binary_data_size')
    # math.prod: exact, where numpy's int64 product of a hostile shape wraps around.
    if array.size != math.prod(shape):
        raise _reject(f"input {name!r}: {array.size} values for shape {list(shape)}")
    return Tensor(name, datatype, array.reshape(shape)), offset


def _requested_outputs(payload: dict[str, Any]) -> tuple[list[str] | None, dict[str, bool]]:
    raw = payload.get("outputs")
    if raw is None:
        return None, {}
    if not isinstance(raw, list) or not all(
        isinstance(o, dict) and isinstance(o.get("name"), str) for o in raw
    ):
        raise _reject('"outputs" must be a list of objects with a "name"')
    binary = {}
    for o in raw:
        params = o.get("parameters")
        if isinstance(params, dict) and isinstance(params.get("binary_data"), bool):
            binary[o["name"]] = params["binary_data"]
    return [o["name"] for o in raw], binary


def parse_request(body: bytes, header_length: str | None, max_inputs: int = 64) -> InferRequest:
    header, tail = split_body(body, header_length)
    payload = parse_json(header)
    if not isinstance(payload, dict) or not isinstance(payload.get("inputs"), list):
        raise _reject('body must be a JSON object with an "inputs" list')
    specs = payload["inputs"]
    if not specs or len(specs) > max_inputs:
        raise _reject(f'"inputs" must hold 1 to {max_inputs} tensors, got {len(specs)}')
    view, offset, inputs = memoryview(tail), 0, {}
    for spec in specs:
        tensor, offset = _tensor(spec, view, offset)
        if tensor.name in inputs:
            raise _reject(f"input {tensor.name!r} is given twice")
        inputs[tensor.name] = tensor
    if offset != len(tail):
        raise _reject(f"{len(tail) - offset} bytes of binary data belong to no input")
    request_id = payload.get("id")
    outputs, binary = _requested_outputs(payload)
    params = _parameters(payload)
    return InferRequest(
        id=request_id if isinstance(request_id, str) else None,
        inputs=inputs,
        outputs=outputs,
        binary=binary,
        binary_default=params.get("binary_data_output") is True,
    )


def _output_json(name: str, datatype: str, array: np.ndarray) -> dict[str, Any]:
    data = (
        [b.decode("utf-8", "replace") for b in array.ravel()]
        if datatype == "BYTES"
        else array.ravel().tolist()
    )
    return {"name": name, "datatype": datatype, "shape": list(array.shape), "data": data}


def encode_response(
    head: dict[str, Any], outputs: list[Tensor], request: InferRequest
) -> tuple[bytes, dict[str, str]]:
    """The response body (JSON, then any binary outputs) and its headers."""
    entries, blobs = [], []
    for out in outputs:
        if not request.binary.get(out.name, request.binary_default):
            entries.append(_output_json(out.name, out.datatype, out.data))
            continue
        blob = (
            encode_bytes_elements(list(out.data.ravel()))
            if out.datatype == "BYTES"
            else np.ascontiguousarray(out.data, dtype=DTYPES[out.datatype]).tobytes()
        )
        entries.append(
            {
                "name": out.name,
                "datatype": out.datatype,
                "shape": list(out.data.shape),
                "parameters": {"binary_data_size": len(blob)},
            }
        )
        blobs.append(blob)
    text = json.dumps({**head, "outputs": entries}, separators=(",", ":")).encode()
    if not blobs:
        return text, {"content-type": "application/json"}
    headers = {"content-type": "application/octet-stream", HEADER_LENGTH: str(len(text))}
    return text + b"".join(blobs), headers
