from __future__ import annotations

import numpy as np
import pytest

from flywheel.core.errors import GateRejected
from flywheel.core.sections import GateConfig
from flywheel.release.gate import ModelMeasure, decide, enforce

CFG = GateConfig(min_accuracy=0.9, tolerance=0.01, max_latency_ratio=1.5, max_size_ratio=2.0)


def test_first_model_needs_only_min_accuracy() -> None:
    result = decide(ModelMeasure(0.95, 1.0, 1000), None, CFG)
    assert result.passed
    assert [c.name for c in result.checks] == ["min_accuracy"]


def test_error_metrics_are_ceilings() -> None:
    cfg = GateConfig(metric="rmse", min_accuracy=None, max_rmse=2.0, tolerance=0.1)
    assert decide(ModelMeasure(1.5, 1.0, 1000), None, cfg).passed
    assert not decide(ModelMeasure(2.5, 1.0, 1000), None, cfg).passed
    prod = ModelMeasure(1.5, 1.0, 1000, "v0003")
    assert decide(ModelMeasure(1.55, 1.0, 1000), prod, cfg).passed
    worse = decide(ModelMeasure(1.7, 1.0, 1000), prod, cfg)
    assert [c.name for c in worse.checks if not c.passed] == ["vs_production_rmse"]


def test_below_min_accuracy_is_rejected_with_the_result() -> None:
    result = decide(ModelMeasure(0.85, 1.0, 1000), None, CFG)
    with pytest.raises(GateRejected) as err:
        enforce(result)
    assert err.value.result is result
    assert "0.8500" in str(err.value)


def test_tolerance_against_production() -> None:
    prod = ModelMeasure(0.97, 1.0, 1000, "v0001")
    assert decide(ModelMeasure(0.961, 1.0, 1000), prod, CFG).passed
    rejected = decide(ModelMeasure(0.955, 1.0, 1000), prod, CFG)
    assert not rejected.passed
    assert any("v0001" in r for r in rejected.reasons)


@pytest.mark.parametrize(
    ("latency", "size", "failed"),
    [(2.0, 1000, "vs_production_latency"), (1.0, 5000, "vs_production_size")],
)
def test_latency_and_size_against_production(latency: float, size: int, failed: str) -> None:
    prod = ModelMeasure(0.95, 1.0, 1000, "v0001")
    result = decide(ModelMeasure(0.96, latency, size), prod, CFG)
    assert not result.passed
    assert [c.name for c in result.checks if not c.passed] == [failed]


def test_probe_rejects_non_finite_and_wrong_shape(tmp_path) -> None:
    import onnx
    from onnx import TensorProto, helper

    from flywheel.release.gate import probe

    def model(op: str, out_dim: int) -> bytes:
        inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 4])
        out = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", out_dim])
        if op == "log":  # log of negative inputs gives NaN
            node = helper.make_node("Log", ["input"], ["logits"])
        else:
            node = helper.make_node("Identity", ["input"], ["logits"])
        graph = helper.make_graph([node], "g", [inp], [out])
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        m.ir_version = 8
        return m.SerializeToString()

    batch = -np.ones((3, 4), dtype=np.float32)
    probe(model("identity", 4), batch, 4)
    with pytest.raises(GateRejected, match="NaN"):
        probe(model("log", 4), batch, 4)
    with pytest.raises(GateRejected, match="shape"):
        probe(model("identity", 4), batch, 10)
    with pytest.raises(GateRejected, match="failed to run"):
        probe(b"not an onnx model", batch, 4)
    assert onnx  # imported for its helper module
