"""Processes that never train must not pay for torch: the model server (through loading,
probing and answering requests), the flow's own process and the CLI's quick paths."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from flywheel.core.config import parse_params
from flywheel.release.registry import Registry

TASKS = ("image_classification", "text_classification", "sentiment", "tabular_regression")
PROJECT = Path(__file__).resolve().parents[3]


def test_serving_and_orchestration_modules_do_not_import_torch() -> None:
    code = (
        "import sys\n"
        "import flows.pipeline, flywheel.pipeline.steps, flywheel.serving.app\n"
        "import flywheel.release.predictor, flywheel.release.deploy\n"
        "from flywheel.families import get_family\n"
        f"families = [get_family(t) for t in {TASKS!r}]\n"
        "print(sorted(m for m in ('torch', 'lightning') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def _model(path: Path, input_type: int, rank: int, outputs: int) -> None:
    """A real (tiny) ONNX graph with the families' contract: one input ``input`` of any
    shape after the batch axis, one output ``logits`` of shape (batch, outputs)."""
    dims = ["batch", *[f"d{i}" for i in range(rank - 1)]]
    nodes = [
        helper.make_node("Cast", ["input"], ["x"], to=TensorProto.FLOAT),
        helper.make_node("Flatten", ["x"], ["flat"], axis=1),
        helper.make_node("ReduceSum", ["flat", "axes"], ["total"], keepdims=1),
        helper.make_node("Mul", ["total", "weights"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "stub",
        [helper.make_tensor_value_info("input", input_type, dims)],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", outputs])],
        initializer=[
            helper.make_tensor("axes", TensorProto.INT64, [1], [1]),
            helper.make_tensor("weights", TensorProto.FLOAT, [1, outputs], [0.01] * outputs),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))


def _spec(task: str, labels: tuple[str, ...], path: Path) -> tuple[int, int, Any]:
    """The family's real preprocessing spec, saved to ``path``; the model's input type and
    rank; and an instance a client would send."""
    if task == "image_classification":
        from flywheel.families.image.pixels import PreprocessingSpec

        PreprocessingSpec(8, "L", (0.5,), (0.25,), labels).save(path)
        return TensorProto.FLOAT, 4, [[10] * 8] * 8
    if task == "text_classification":
        from flywheel.families.text.spec import TextSpec
        from flywheel.families.text.tokenizer import Tokenizer

        tokenizer = Tokenizer.fit(["a good day", "a bad day"], max_len=8, vocab_size=50)
        TextSpec(labels, tokenizer).save(path)
        return TensorProto.INT64, 2, "a good day"
    if task == "sentiment":
        pytest.importorskip("tokenizers")
        from flywheel.families.sentiment.package import model_record
        from flywheel.families.sentiment.spec import SentimentSpec
        from flywheel.families.sentiment.tokenizer import current_ref

        SentimentSpec(labels, current_ref(16), model_record()).save(path)
        return TensorProto.INT64, 2, "what a lovely film"
    from flywheel.families.tabular.preprocessing import fit_spec

    records = [{"x": 1.0}, {"x": 2.0}, {"x": 3.0}]
    fit_spec(records, np.array([1.0, 2.0, 3.0]), ["x"], [], [], "y").save(path)
    return TensorProto.FLOAT, 2, {"x": 2.5}


def _registry_with(task: str, root: Path) -> tuple[dict[str, Any], Any]:
    regression = task == "tabular_regression"
    labels: tuple[str, ...] = () if regression else ("neg", "pos")
    raw: dict[str, Any] = {"task": task, "validate": {"labels": list(labels)}}
    if regression:
        raw["validate"] = {"labels": []}
    params = parse_params(raw)
    input_type, rank, instance = _spec(task, labels, root / "spec.json")
    _model(root / "model.onnx", input_type, rank, 1 if regression else 2)
    fields = {
        "task": task,
        "labels": labels,
        "data_hash": "0" * 32,
        "params_hash": "p",
        "code_version": "test",
        "variant": "fp32",
        "recipe": {},
        "metrics": {},
        "params": params.as_dict(),
        "evaluation": {},
    }
    registry = Registry(root / "registry")
    card = registry.register(root / "model.onnx", root / "spec.json", fields)
    registry.promote(card.version)
    return raw, instance


_SERVE = """
import json, sys
from pathlib import Path
from fastapi.testclient import TestClient
from flywheel.core.config import parse_params
from flywheel.core.layout import Layout
from flywheel.serving.app import create_app

root = Path(sys.argv[1])
raw, instance = json.loads(Path(sys.argv[2]).read_text())
params = parse_params({**raw, "paths": {"registry": str(root / "registry")},
                       "data": {**raw.get("data", {}), "path": str(root / "data"),
                                "feedback_inbox": str(root / "inbox")}})
with TestClient(create_app(params, Layout.from_params(params, root))) as client:
    ready = client.get("/readyz")
    answer = client.post("/v1/predict", json={"instances": [instance]})
print(json.dumps({"ready": ready.status_code, "status": answer.status_code,
                  "body": answer.json(),
                  "torch": sorted(m for m in ("torch", "lightning") if m in sys.modules)}))
"""


@pytest.mark.parametrize("task", TASKS)
def test_the_server_loads_probes_and_answers_without_torch(task: str, tmp_path: Path) -> None:
    raw, instance = _registry_with(task, tmp_path)
    request = tmp_path / "request.json"
    request.write_text(json.dumps([raw, instance]))
    out = subprocess.run(
        [sys.executable, "-c", _SERVE, str(tmp_path), str(request)],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["ready"] == 200 and result["status"] == 200, result
    assert len(result["body"]["predictions"]) == 1
    assert result["torch"] == [], "the server imported torch"
