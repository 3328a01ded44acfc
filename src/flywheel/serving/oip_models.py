"""What each model family looks like as Open Inference Protocol tensors.

v2 tensors are turned into the family's own ``/v1`` instances and decoded by the same
:class:`~flywheel.serving.decoders.FamilyDecoder`, so both protocols share one
preprocessing path and one set of refusals. Per family:

* images: input ``image``, either pixels ``UINT8``/``FP32`` (any numeric type, values
  0..255) shaped ``[N, C, H, W]`` (``[N, H, W]`` for grey), or ``BYTES [N]`` holding
  encoded PNG/JPEG files (binary data: JSON strings cannot carry them). Metadata lists the
  pixel form.
* text and sentiment: input ``text``, ``BYTES [N]`` of UTF-8 strings.
* tables: one input per column, named as the column, ``[N]``: numeric columns any numeric
  type (or ``BYTES`` text, where an empty string is a missing value), categorical columns
  ``BYTES`` (or integers). Named inputs rather than one ``FP32`` matrix because categorical
  columns are text, and a missing value must be expressible.

Outputs: classifiers ``label`` (``BYTES [N]``) and ``probabilities`` (``FP32 [N, K]``, in
the order of the card's labels, ``GET /v1/model``); regressors ``value`` (``FP64 [N]``,
the same number ``/v1`` answers).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import numpy as np

from flywheel.release.predictor import Prediction
from flywheel.serving.model_holder import LoadedModel
from flywheel.serving.oip_codec import Tensor
from flywheel.serving.requests import RequestRejectedError

_INTEGER_TYPES = ("UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64")
NUMERIC_TYPES = frozenset({*_INTEGER_TYPES, "FP16", "FP32", "FP64"})


def _reject(message: str) -> RequestRejectedError:
    return RequestRejectedError(400, "invalid_instance", message)


def _meta(name: str, datatype: str, shape: list[int]) -> dict[str, Any]:
    return {"name": name, "datatype": datatype, "shape": shape}


def input_metadata(model: LoadedModel) -> list[dict[str, Any]]:
    family, spec = model.predictor.family, model.predictor.spec
    if family.name == "image_classification":
        return [_meta("image", "UINT8", [-1, spec.channels, spec.size, spec.size])]
    if family.name == "tabular_regression":
        numeric = [_meta(c.name, "FP32", [-1]) for c in spec.numeric]
        return numeric + [_meta(c.name, "BYTES", [-1]) for c in spec.categorical]
    return [_meta("text", "BYTES", [-1])]


def output_metadata(model: LoadedModel) -> list[dict[str, Any]]:
    if model.predictor.family.objective == "regression":
        return [_meta("value", "FP64", [-1])]
    labels = len(model.card.labels)
    return [_meta("label", "BYTES", [-1]), _meta("probabilities", "FP32", [-1, labels])]


def _only(tensors: dict[str, Tensor], name: str) -> Tensor:
    extra = sorted(set(tensors) - {name})
    if name not in tensors or extra:
        raise _reject(f"this model takes one input named {name!r}, got {sorted(tensors)}")
    return tensors[name]


def _rows(tensor: Tensor, row_dims: tuple[int, ...]) -> np.ndarray:
    data = tensor.data
    if data.ndim == 0:
        raise _reject(f"input {tensor.name!r} needs a batch dimension first")
    if data.ndim - 1 not in row_dims:
        dims = " or ".join(str(d + 1) for d in row_dims)
        raise _reject(f"input {tensor.name!r} must have {dims} dimensions, got {data.ndim}")
    return data


def _strings(tensor: Tensor) -> list[bytes]:
    data = _rows(tensor, (0, 1))
    if data.ndim == 2 and data.shape[1] != 1:
        raise _reject(f"input {tensor.name!r}: BYTES must be shaped [N] or [N, 1]")
    return list(data.reshape(-1))


def _text(i: int, raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise _reject(f"instance {i}: text is not valid UTF-8 (byte {err.start})") from None


def _image_instances(tensors: dict[str, Tensor], _: LoadedModel) -> list[Any]:
    tensor = _only(tensors, "image")
    if tensor.datatype == "BYTES":
        return [{"b64": base64.b64encode(b).decode("ascii")} for b in _strings(tensor)]
    if tensor.datatype not in NUMERIC_TYPES:
        raise _reject(
            f"input 'image' must be pixels (UINT8 or FP32) or BYTES, not {tensor.datatype}"
        )
    return [row.tolist() for row in _rows(tensor, (2, 3))]


def _text_instances(tensors: dict[str, Tensor], _: LoadedModel) -> list[Any]:
    tensor = _only(tensors, "text")
    if tensor.datatype != "BYTES":
        raise _reject(f"input 'text' must be BYTES (UTF-8 strings), not {tensor.datatype}")
    return [_text(i, raw) for i, raw in enumerate(_strings(tensor))]


def _column(tensor: Tensor, numeric: bool) -> list[Any]:
    if tensor.datatype == "BYTES":
        return [_text(i, raw) for i, raw in enumerate(_strings(tensor))]
    allowed = NUMERIC_TYPES if numeric else _INTEGER_TYPES
    if tensor.datatype not in allowed:
        want = "a number type or BYTES" if numeric else "BYTES (text) or an integer type"
        raise _reject(f"column {tensor.name!r} must be {want}, not {tensor.datatype}")
    data = _rows(tensor, (0, 1))
    if data.ndim == 2 and data.shape[1] != 1:
        raise _reject(f"column {tensor.name!r} must be shaped [N] or [N, 1]")
    return data.reshape(-1).tolist()


def _table_instances(tensors: dict[str, Tensor], model: LoadedModel) -> list[Any]:
    spec = model.predictor.spec
    numeric = {c.name for c in spec.numeric}
    columns = list(spec.columns)
    missing = [c for c in columns if c not in tensors]
    extra = sorted(set(tensors) - set(columns))
    if missing or extra:
        raise _reject(
            f"this model takes one input per column {columns}; missing {missing}, unknown {extra}"
        )
    values = {c: _column(tensors[c], c in numeric) for c in columns}
    sizes = {len(v) for v in values.values()}
    if len(sizes) != 1:
        raise _reject("every column input must have the same number of rows")
    return [{c: values[c][i] for c in columns} for i in range(sizes.pop())]


_INSTANCES: dict[str, Callable[[dict[str, Tensor], LoadedModel], list[Any]]] = {
    "image_classification": _image_instances,
    "tabular_regression": _table_instances,
}


def instances(tensors: dict[str, Tensor], model: LoadedModel) -> list[Any]:
    """The ``/v1`` instances that the request's tensors stand for."""
    convert = _INSTANCES.get(model.predictor.family.name, _text_instances)
    return convert(tensors, model)


def output_tensors(model: LoadedModel, predictions: list[Prediction]) -> list[Tensor]:
    if model.predictor.family.objective == "regression":
        values = np.array([p.fields["value"] for p in predictions], dtype=np.float64)
        return [Tensor("value", "FP64", values)]
    labels = model.card.labels
    names = np.array([str(p.label).encode() for p in predictions], dtype=object)
    probs = np.array(
        [[p.probabilities[label] for label in labels] for p in predictions], dtype=np.float32
    )
    return [Tensor("label", "BYTES", names), Tensor("probabilities", "FP32", probs)]
