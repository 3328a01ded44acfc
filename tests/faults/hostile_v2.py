"""The hostile ``/v1/predict`` cases as Open Inference Protocol (``/v2``) requests, so one
case list attacks both protocols.

Each case's instances become the family's v2 tensors (:mod:`flywheel.serving.oip_models`):
pixels an ``FP32`` tensor, encoded files a binary ``BYTES`` tensor, texts ``BYTES``
strings, table records one tensor per column. A body that is not a JSON object of
instances (bad bytes, bad JSON) is sent as it is. The expected status stays the v1 one. A
case with no v2 form (a title field, a record that is not an object, feedback) is left out.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
from dataclasses import replace
from typing import Any

import numpy as np
from tests.faults.hostile import Case

INPUT = {"image_classification": "image", "tabular_regression": None}


def _payload(item: Case) -> Any:
    try:
        return json.loads(item.body.decode("utf-8"))
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None


def _json_tensor(name: str, datatype: str, values: list[Any]) -> dict[str, Any]:
    return {"name": name, "datatype": datatype, "shape": [len(values)], "data": values}


def _binary_bytes(name: str, items: list[bytes]) -> tuple[dict[str, Any], bytes]:
    blob = b"".join(struct.pack("<I", len(b)) + b for b in items)
    spec = {"name": name, "datatype": "BYTES", "shape": [len(items)]}
    return {**spec, "parameters": {"binary_data_size": len(blob)}}, blob


def _image(instances: list[Any]) -> tuple[list[dict[str, Any]], bytes] | None:
    if all(isinstance(i, dict) and isinstance(i.get("b64"), str) for i in instances):
        try:
            files = [base64.b64decode(i["b64"], validate=True) for i in instances]
        except binascii.Error:
            return None  # v2 carries the file's bytes: no base64 to get wrong
        spec, blob = _binary_bytes("image", files)
        return [spec], blob
    if all(isinstance(i, list) for i in instances):
        try:
            shape = list(np.shape(instances))
        except ValueError:
            return None
        flat = np.asarray(instances, dtype=np.float64).ravel().tolist()
        return [{"name": "image", "datatype": "FP32", "shape": shape, "data": flat}], b""
    return None


def _column(name: str, values: list[Any]) -> dict[str, Any]:
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return _json_tensor(name, "FP64", values)
    if all(isinstance(v, bool) for v in values):
        return _json_tensor(name, "BOOL", values)
    # Text, and null as the empty string (a missing value); anything else as it is, which
    # the server must refuse as no string.
    return _json_tensor(name, "BYTES", ["" if v is None else v for v in values])


def _table(instances: list[Any]) -> tuple[list[dict[str, Any]], bytes] | None:
    if not all(isinstance(r, dict) for r in instances):
        return None
    columns = sorted({c for r in instances for c in r})
    if any(set(r) != set(columns) for r in instances):
        return None
    return [_column(c, [r[c] for r in instances]) for c in columns], b""


def _inputs(task: str, instances: list[Any]) -> tuple[list[dict[str, Any]], bytes] | None:
    if task == "image_classification":
        return _image(instances)
    if task == "tabular_regression":
        return _table(instances)
    if all(isinstance(i, str) for i in instances):
        return [_json_tensor("text", "BYTES", instances)], b""
    return None


def as_v2(item: Case, task: str) -> Case | None:
    path = f"/v2/models/{task}/infer"
    if item.path != "/v1/predict":
        return None
    payload = _payload(item)
    if not isinstance(payload, dict) or not isinstance(payload.get("instances"), list):
        return replace(item, name=f"v2 {item.name}", path=path)
    converted = _inputs(task, payload["instances"])
    if converted is None:
        if 200 in item.expect:
            return None
        # No v2 form, and refused anyway: as strings of the family's input, still refused.
        name = INPUT.get(task, "text") or "size"
        converted = [_json_tensor(name, "BYTES", payload["instances"])], b""
    inputs, blob = converted
    head = json.dumps({"id": item.name[:40], "inputs": inputs}).encode()
    headers = (("inference-header-content-length", str(len(head))),) if blob else ()
    kind = "application/octet-stream" if blob else "application/json"
    return Case(f"v2 {item.name}", head + blob, item.expect, path, kind, headers)


def v2_cases(cases: list[Case], task: str) -> list[Case]:
    return [c for c in (as_v2(item, task) for item in cases) if c is not None]
