"""The compression search's pure parts: the plan, the verdicts, the pruning comparison."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from torch import nn

from flywheel.compress.levels import fastest_level, levels
from flywheel.compress.search import (
    Planned,
    gives_speedup,
    kind_of,
    not_applicable,
    planned_variants,
    pruning_comparison,
    verdicts,
)
from flywheel.compress.unstructured import sparsify
from flywheel.config import parse_params
from flywheel.errors import ConfigError
from flywheel.evaluate import VariantResult, choose_winner
from flywheel.layout import Layout


@dataclass(frozen=True)
class _M:
    score: float
    latency_p50_ms: float


def _r(accuracy: float, p50_ms: float) -> VariantResult:
    return VariantResult(accuracy, {"accuracy": accuracy}, 1000, p50_ms, p50_ms, 1.0, "cpu")


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


def test_report_only_variants_never_win() -> None:
    results = {"fp32": _r(0.97, 1.0), "unstructured": _r(0.97, 0.5), "int8": _r(0.97, 0.8)}
    assert choose_winner(results, 0.01, report_only=["unstructured"]) == "int8"
    assert choose_winner(results, 0.01) == "unstructured"


def test_verdicts_say_why_each_variant_won_or_lost() -> None:
    results = {
        "fp32": _M(0.97, 1.0),
        "int8": _M(0.965, 0.5),
        "pruned-int8": _M(0.90, 0.3),
        "pruned-fp32": _M(0.97, 0.8),
        "unstructured": _M(0.968, 1.02),
    }
    why = verdicts(
        results,
        "int8",
        metric="accuracy",
        max_drop=0.01,
        qualified=["fp32", "int8", "pruned-fp32", "unstructured"],
        report_only=["unstructured"],
    )
    assert why["int8"].startswith("deployed: fastest of 3 variants")
    assert "accuracy -0.0050" in why["int8"]
    assert why["pruned-int8"].startswith("rejected: accuracy 0.0700 worse")
    assert why["pruned-fp32"] == "qualified but slower: 1.60x the winner's latency"
    assert why["fp32"] == "qualified but slower: 2.00x the winner's latency"
    assert why["unstructured"].startswith("report only: 1.02x fp32 latency: NO speed-up")


def test_verdict_for_a_report_only_variant_that_is_faster() -> None:
    results = {"fp32": _M(0.97, 1.0), "unstructured": _M(0.97, 0.5)}
    why = verdicts(
        results,
        "fp32",
        metric="accuracy",
        max_drop=0.01,
        qualified=["fp32", "unstructured"],
        report_only=["unstructured"],
    )
    assert "a speed-up, but not a deployable variant" in why["unstructured"]
    assert "accuracy +0.0000" in why["unstructured"]
    assert why["fp32"].startswith("deployed: fastest of 1 variants")


def test_speedup_needs_a_clear_margin() -> None:
    assert gives_speedup(0.9, 1.0)
    assert not gives_speedup(0.95, 1.0)


def test_pruning_compares_with_the_same_precision() -> None:
    rows = pruning_comparison(
        {"fp32": "fp32", "int8": "int8", "pruned-int8": "pruned-int8", "pruned-fp32@0.7": "x"},
        {"fp32": 1.0, "int8": 0.5, "pruned-int8": 0.25},
        {"pruned-int8": 3.5},
        {"pruned-int8": 0.5},
    )
    assert rows == [
        {
            "variant": "pruned-int8",
            "prune_ratio": 0.5,
            "macs_ratio": 3.5,
            "unpruned": "int8",
            "p50_vs_unpruned": 0.5,
        }
    ]
    missing_base = pruning_comparison({"pruned-fp32": "pruned-fp32"}, {"pruned-fp32": 1.0}, {}, {})
    assert missing_base[0]["p50_vs_unpruned"] is None


def test_fastest_level_keeps_the_default_within_noise() -> None:
    assert "all" in levels() and "disabled" in levels()
    assert fastest_level({"disabled": 2.0, "basic": 1.0, "all": 1.0}) == "all"
    assert fastest_level({"disabled": 2.0, "basic": 0.98, "all": 1.0}) == "all"
    assert fastest_level({"disabled": 2.0, "basic": 0.9, "extended": 0.9, "all": 1.0}) == "basic"
    assert fastest_level({"disabled": 2.0, "basic": 1.0}) == "basic"


def test_sparsify_zeroes_the_smallest_weights_and_keeps_shapes() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
    sparse, stats = sparsify(net, 0.5)
    assert stats["zero_share"] == pytest.approx(0.5, abs=0.01)
    assert stats["layers"] == 2
    shapes = {k: v.shape for k, v in net.state_dict().items()}
    assert {k: v.shape for k, v in sparse.state_dict().items()} == shapes
    assert not any((p == 0).any() for p in net.parameters())  # the original is untouched
    with pytest.raises(ValueError, match="sparsity"):
        sparsify(net, 1.0)
