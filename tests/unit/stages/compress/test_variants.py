"""The variant table and the compression plan: kinds declared once, expanded per ratio."""

from __future__ import annotations

import pytest

from flywheel.core.config import parse_params
from flywheel.core.errors import ConfigError
from flywheel.core.layout import Layout
from flywheel.stages.compress import builders
from flywheel.stages.compress.variants import (
    KINDS,
    Planned,
    builder_name,
    kind_of,
    not_applicable,
    planned_variants,
)


def test_plan_expands_pruned_kinds_per_ratio() -> None:
    plan = planned_variants(["fp32", "int8", "pruned-fp32", "pruned-int8"], [0.5, 0.75])
    assert [p.name for p in plan] == [
        "fp32",
        "int8",
        "pruned-fp32",
        "pruned-fp32@0.75",
        "pruned-int8",
        "pruned-int8@0.75",
    ]
    assert plan[3] == Planned("pruned-fp32@0.75", "pruned-fp32", 0.75)
    assert kind_of("pruned-int8@0.75") == "pruned-int8"
    assert kind_of("int8") == "int8"


def test_plan_keeps_one_ratio_names_plain_and_needs_a_ratio() -> None:
    assert [p.name for p in planned_variants(["fp32", "pruned-int8"], [0.3])] == [
        "fp32",
        "pruned-int8",
    ]
    with pytest.raises(ValueError, match="ratio"):
        planned_variants(["fp32"], [])


def test_universal_kinds_apply_to_every_family() -> None:
    family = ("fp32", "int8")
    assert not_applicable(["fp32", "int8", "unstructured", "fp16"], family) == []
    assert not_applicable(["fp32", "dynamic-int8", "pruned-int8"], family) == [
        "dynamic-int8",
        "pruned-int8",
    ]


def test_config_prune_ratios(raw_params: dict) -> None:
    raw_params["compress"].pop("prune_ratios", None)
    assert parse_params(raw_params).compress.ratios == (0.5,)
    raw_params["compress"]["prune_ratio"] = 0.4  # the single-ratio key of old configs
    with pytest.raises(ConfigError, match="prune_ratio"):
        parse_params(raw_params)
    del raw_params["compress"]["prune_ratio"]
    raw_params["compress"]["prune_ratios"] = []
    with pytest.raises(ConfigError, match="prune_ratios"):
        parse_params(raw_params)
    raw_params["compress"]["prune_ratios"] = [0.3, 0.6]
    assert parse_params(raw_params).compress.ratios == (0.3, 0.6)
    raw_params["compress"]["prune_ratios"] = [0.3, 0.3]
    with pytest.raises(ConfigError, match="duplicates"):
        parse_params(raw_params)
    raw_params["compress"]["prune_ratios"] = [1.0]
    with pytest.raises(ConfigError, match="prune_ratios"):
        parse_params(raw_params)


def test_search_variants_get_files_named_after_them(tmp_path) -> None:
    layout = Layout(tmp_path, tmp_path / "a", tmp_path / "r", tmp_path / "e", tmp_path / "d")
    assert layout.variant_file("pruned-int8@0.75").name == "pruned-int8@0.75.onnx"
    assert layout.variant_file("int8").name == "int8.onnx"


def test_every_kind_has_its_builder() -> None:
    for kind in KINDS:
        assert callable(getattr(builders, builder_name(kind))), kind


def test_unknown_kind_is_a_config_error_naming_the_known_ones(raw_params: dict) -> None:
    raw_params["compress"]["variants"] = ["fp32", "int4"]
    with pytest.raises(ConfigError, match="unknown kinds \\['int4'\\]"):
        parse_params(raw_params)
