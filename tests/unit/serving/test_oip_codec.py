"""The Open Inference Protocol codec against the bodies tritonclient itself writes and reads
(``generate_request_body`` / ``InferResult.from_response_body``), and malformed bodies."""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np
import pytest

from flywheel.serving.oip_codec import (
    InferRequest,
    Tensor,
    encode_response,
    parse_request,
)
from flywheel.serving.requests import RequestRejectedError

triton = pytest.importorskip("tritonclient.http")


def triton_body(arrays: dict[str, tuple[str, np.ndarray]], binary: bool) -> tuple[bytes, Any]:
    inputs = []
    for name, (datatype, array) in arrays.items():
        tensor = triton.InferInput(name, list(array.shape), datatype)
        tensor.set_data_from_numpy(array, binary_data=binary)
        inputs.append(tensor)
    body, json_size = triton.InferenceServerClient.generate_request_body(inputs, request_id="r1")
    return body, None if json_size is None else str(json_size)


@pytest.mark.parametrize("binary", [True, False])
def test_tritonclient_requests_decode_to_the_arrays_sent(binary: bool) -> None:
    pixels = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4) / 7
    texts = np.array(["héllo".encode(), b"", b"w\xc3\xb6rld"], dtype=object)
    body, header = triton_body({"x": ("FP32", pixels), "t": ("BYTES", texts)}, binary)
    request = parse_request(body, header)
    assert request.id == "r1" and set(request.inputs) == {"x", "t"}
    np.testing.assert_array_equal(request.inputs["x"].data, pixels)
    assert request.inputs["x"].data.shape == (2, 3, 4)
    assert list(request.inputs["t"].data) == list(texts)


def json_body(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


def test_nested_and_flat_data_are_the_same_tensor() -> None:
    def one(data: Any) -> np.ndarray:
        tensor = {"name": "x", "datatype": "INT64", "shape": [2, 2], "data": data}
        return parse_request(json_body({"inputs": [tensor]}), None).inputs["x"].data

    np.testing.assert_array_equal(one([[1, 2], [3, 4]]), one([1, 2, 3, 4]))


def test_unknown_keys_and_parameters_are_ignored() -> None:
    tensor = {"name": "x", "datatype": "FP32", "shape": [1], "data": [1.5], "parameters": {"a": 1}}
    body = {"model_name": "m", "id": 7, "parameters": {"priority": 3}, "inputs": [tensor]}
    request = parse_request(json_body(body), None)
    assert request.id is None  # not a string: not an id to echo
    assert request.inputs["x"].data.tolist() == [1.5]


def bad(body: bytes, header: str | None = None) -> str:
    with pytest.raises(RequestRejectedError) as err:
        parse_request(body, header)
    assert err.value.status == 400
    return err.value.message


def tensor(**fields: Any) -> bytes:
    return json_body({"inputs": [{"name": "x", "datatype": "FP32", "shape": [2], **fields}]})


def test_malformed_requests_are_400_naming_the_problem() -> None:
    assert "inputs" in bad(b'{"instances": [1]}')
    assert "inputs" in bad(json_body({"inputs": []}))
    assert "datatype" in bad(json_body({"inputs": [{"name": "x", "datatype": "F", "shape": [1]}]}))
    assert "shape" in bad(tensor(shape=[-1], data=[1]))
    assert "shape" in bad(tensor(shape="2", data=[1, 2]))
    assert "2 values" in bad(tensor(shape=[3], data=[1, 2]))
    assert "0 values" in bad(tensor(shape=[2**32, 2**32], data=[]))  # no int64 wrap-around
    assert "numbers" in bad(tensor(data=[True, 1]))
    assert "numbers" in bad(tensor(data=["1", 2]))
    assert "neither" in bad(tensor())
    assert "nested deeper" in bad(tensor(shape=[1], data=[[[[[[[[[[1]]]]]]]]]]))
    strings = {"name": "t", "datatype": "BYTES", "shape": [1], "data": [5]}
    assert "strings" in bad(json_body({"inputs": [strings]}))
    twice = {"name": "x", "datatype": "FP32", "shape": [1], "data": [1]}
    assert "twice" in bad(json_body({"inputs": [twice, twice]}))
    assert "outputs" in bad(json_body({"inputs": [twice], "outputs": [{"id": 1}]}))


def test_malformed_binary_bodies_are_400() -> None:
    head = tensor(parameters={"binary_data_size": 8})
    good = head + struct.pack("<2f", 1.0, 2.0)
    assert parse_request(good, str(len(head))).inputs["x"].data.tolist() == [1.0, 2.0]
    assert "Inference-Header-Content-Length" in bad(good, "x")
    assert "Inference-Header-Content-Length" in bad(good, str(len(good) + 1))
    assert "overruns" in bad(head + b"\0" * 4, str(len(head)))
    assert "belong to no input" in bad(good + b"\0", str(len(head)))
    short = tensor(parameters={"binary_data_size": 4})
    assert "needs 8" in bad(short + b"\0" * 4, str(len(short)))
    text = json_body(
        {
            "inputs": [
                {
                    "name": "t",
                    "datatype": "BYTES",
                    "shape": [1],
                    "parameters": {"binary_data_size": 6},
                }
            ]
        }
    )
    assert "truncated" in bad(text + struct.pack("<I", 9) + b"ab", str(len(text)))
    assert "element length" in bad(text + struct.pack("<I", 1) + b"a\0", str(len(text)))


def outputs() -> list[Tensor]:
    return [
        Tensor("label", "BYTES", np.array([b"pos", "né".encode()], dtype=object)),
        Tensor("probabilities", "FP32", np.array([[0.25, 0.75], [0.5, 0.5]], dtype=np.float32)),
    ]


@pytest.mark.parametrize("binary", [True, False])
def test_responses_read_back_with_tritonclient(binary: bool) -> None:
    request = InferRequest(id="r1", inputs={}, outputs=None, binary_default=binary)
    body, headers = encode_response({"model_name": "m", "id": "r1"}, outputs(), request)
    header = headers.get("inference-header-content-length")
    assert (header is not None) == binary
    result = triton.InferResult.from_response_body(body, header_length=header and int(header))
    labels = [v.decode() if isinstance(v, bytes) else v for v in result.as_numpy("label")]
    assert labels == ["pos", "né"]
    np.testing.assert_array_equal(result.as_numpy("probabilities"), outputs()[1].data)
    assert result.get_response()["id"] == "r1"


def test_per_output_binary_overrides_the_request_default() -> None:
    request = InferRequest(None, {}, None, binary={"label": False}, binary_default=True)
    body, headers = encode_response({"model_name": "m"}, outputs(), request)
    head = json.loads(body[: int(headers["inference-header-content-length"])])
    assert "data" in head["outputs"][0] and "parameters" in head["outputs"][1]
    assert len(body) - len(json.dumps(head, separators=(",", ":"))) == 16
