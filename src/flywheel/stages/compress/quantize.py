"""INT8 quantization of an exported ONNX graph with ONNX Runtime's quantization tools.

Static QDQ is the fast INT8 path: activation ranges are calibrated once on training samples
and ORT fuses the QDQ pairs into QLinearConv/QGemm, so inference runs integer kernels end to
end. Dynamic quantization computes activation ranges on every call and, for CNNs on x86
without VNNI, is slower than fp32; it is kept as an optional variant so that measurement,
not belief, rules it out.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnxruntime
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quant_pre_process,
    quantize_dynamic,
    quantize_static,
)

from flywheel.core.ort import INPUT_NAME

_CALIBRATION_BATCH = 64

# U8S8 (unsigned activations, signed weights) is ORT's recommendation for x86 CPUs.
ACTIVATION_TYPE = QuantType.QUInt8
WEIGHT_TYPE = QuantType.QInt8


class ArrayCalibrationReader(CalibrationDataReader):
    """Feeds ``x`` to the calibrator in fixed batches; MinMax ranges do not depend on batching."""

    def __init__(self, x: np.ndarray, batch_size: int = _CALIBRATION_BATCH) -> None:
        # Inputs keep their dtype: token ids are int64, images and tables float32.
        self._x = np.ascontiguousarray(x)
        self._batch_size = batch_size
        self._batches: Iterator[np.ndarray] = self._iterate()

    def _iterate(self) -> Iterator[np.ndarray]:
        for i in range(0, len(self._x), self._batch_size):
            yield self._x[i : i + self._batch_size]

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._batches, None)
        return None if batch is None else {INPUT_NAME: batch}

    def rewind(self) -> None:
        self._batches = self._iterate()

    def __len__(self) -> int:
        return -(-len(self._x) // self._batch_size)


def calibration_sample(x: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` rows of ``x`` drawn without replacement by a seeded generator (all rows if fewer)."""
    if n >= len(x):
        return x
    index = np.sort(np.random.default_rng(seed).choice(len(x), size=n, replace=False))
    return x[index]


def _pre_process(fp32_path: Path, out: Path) -> None:
    # Shape inference plus ORT's basic graph optimisations (Conv+BN fusion and friends), so
    # the quantizer sees the graph that will actually run and calibrates the right tensors.
    quant_pre_process(str(fp32_path), str(out), skip_symbolic_shape=False)


def quantize_static_qdq(
    fp32_path: Path,
    out_path: Path,
    calibration: np.ndarray,
    *,
    per_channel: bool,
    activation_type: QuantType = ACTIVATION_TYPE,
    weight_type: QuantType = WEIGHT_TYPE,
) -> dict[str, object]:
    """Static INT8 in QDQ format calibrated (MinMax) on ``calibration``; returns its settings."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    # Without VNNI, U8S8 products can saturate 16-bit intermediates; 7-bit weights avoid it.
    reduce_range = activation_type == QuantType.QUInt8
    with tempfile.TemporaryDirectory(prefix="flywheel-quant-") as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        _pre_process(fp32_path, prepared)
        quantize_static(
            str(prepared),
            str(out_path),
            ArrayCalibrationReader(calibration),
            quant_format=QuantFormat.QDQ,
            per_channel=per_channel,
            reduce_range=reduce_range,
            activation_type=activation_type,
            weight_type=weight_type,
            calibrate_method=CalibrationMethod.MinMax,
        )
    return {
        "quant_format": "QDQ",
        "calibration_method": "MinMax",
        "calibration_samples": len(calibration),
        "per_channel": per_channel,
        "reduce_range": reduce_range,
        "activation_type": activation_type.name,
        "weight_type": weight_type.name,
        "onnxruntime_version": onnxruntime.__version__,
    }


def quantize_dynamic_int8(
    fp32_path: Path, out_path: Path, *, per_channel: bool
) -> dict[str, object]:
    """Weights stored as INT8, activation ranges computed at run time; returns its settings."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="flywheel-quant-") as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        _pre_process(fp32_path, prepared)
        quantize_dynamic(
            str(prepared),
            str(out_path),
            per_channel=per_channel,
            weight_type=QuantType.QInt8,
        )
    return {
        "quant_format": "dynamic",
        "per_channel": per_channel,
        "activation_type": "QUInt8 (computed per call)",
        "weight_type": QuantType.QInt8.name,
        "onnxruntime_version": onnxruntime.__version__,
    }
