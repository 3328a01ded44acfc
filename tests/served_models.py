"""Tiny real models of every family in a real registry, for tests of the server: ONNX
graphs with the families' input/output contract and each family's own preprocessing spec."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from flywheel.core.config import parse_params
from flywheel.release.registry import Registry

TASKS = ("image_classification", "text_classification", "sentiment", "tabular_regression")


def stub_model(
    path: Path,
    input_type: int,
    rank: int,
    outputs: int,
    weight: float,
    spread: float = 0.0,
) -> Path:
    """A real (tiny) ONNX graph with the families' contract: ``input`` of any shape after
    the batch axis, ``logits`` (batch, outputs) = weight * (1 + spread * k) * sum of the
    inputs for output k (``spread`` > 0: the classes' scores differ with the input)."""
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
            helper.make_tensor(
                "weights",
                TensorProto.FLOAT,
                [1, outputs],
                [weight * (1 + spread * k) for k in range(outputs)],
            ),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def family_spec(task: str, labels: tuple[str, ...], path: Path) -> tuple[int, int, Any]:
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


def registry_with(
    task: str, root: Path, extra: dict[str, Any] | None = None
) -> tuple[dict[str, Any], Any]:
    """A registry under ``root`` whose production model is a tiny graph of ``task``; the
    raw params (``extra`` laid over them) and an instance a client would send."""
    regression = task == "tabular_regression"
    labels: tuple[str, ...] = () if regression else ("neg", "pos")
    raw: dict[str, Any] = {"task": task, "validate": {"labels": list(labels)}, **(extra or {})}
    if regression:
        raw["validate"] = {"labels": [], **(extra or {}).get("validate", {})}
    params = parse_params(raw)
    input_type, rank, instance = family_spec(task, labels, root / "spec.json")
    stub_model(root / "model.onnx", input_type, rank, 1 if regression else 2, weight=0.01)
    fields = stub_card_fields(task, labels, params.as_dict())
    registry = Registry(root / "registry")
    card = registry.register(root / "model.onnx", root / "spec.json", fields)
    registry.promote(card.version)
    return raw, instance


def stub_card_fields(task: str, labels: Sequence[str], params: dict[str, Any]) -> dict[str, Any]:
    """The card of a model no pipeline made: every field the registry needs, none measured."""
    return {
        "task": task,
        "labels": labels,
        "data_hash": "0" * 32,
        "params_hash": "p",
        "code_version": "test",
        "variant": "fp32",
        "recipe": {},
        "metrics": {},
        "params": params,
        "evaluation": {},
    }
