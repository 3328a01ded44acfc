"""The report: Pareto front, formatting, and a whole REPORT.md from fabricated results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from benchmarks.inference import family_targets, headline

from benchmarks import common, report, report_format, report_plots


def _model(score: float, size: int, p50: float, runtime: str = "onnxruntime cpu") -> dict:
    rounds = {"n": 2, "median": p50, "p25": p50, "p75": p50, "min": p50, "max": p50}
    return {
        "runtime": runtime,
        "score": score,
        "metrics": {"accuracy": score},
        "size_bytes": size,
        "latency_p50_ms": p50,
        "latency_p99_ms": 2 * p50,
        "latency_round_medians_ms": rounds,
        "throughput_per_s": 1000.0 / p50,
    }


def fake_inference_result() -> dict[str, Any]:
    family: dict[str, Any] = {
        "task": "image_classification",
        "params_file": "params.yaml",
        "metric": "accuracy",
        "higher_is_better": True,
        "test_samples": 100,
        "intra_op_threads": 1,
        "winner": "pruned-int8",
        "models": {
            "torch-eager": _model(0.97, 100_000, 1.0, "pytorch eager"),
            "fp32": _model(0.97, 100_000, 0.5),
            "int8": _model(0.965, 30_000, 0.4),
            "pruned-int8": _model(0.965, 10_000, 0.2),
            "unstructured": _model(0.96, 100_000, 0.5),
        },
        "search": {
            "max_drop": 0.01,
            "verdicts": {"pruned-int8": "deployed: fastest"},
            "skipped": {"fp16": "no GPU"},
            "ort_level_fastest": {"fp32": "all"},
            "ort_levels_p50_ms": {"fp32": {"basic": 0.6, "all": 0.5}},
            "macs_ratio": {"pruned-int8": 3.5},
            "report_only": ["unstructured"],
        },
        "gpu": {"what": "gpu", "reason": "no CUDA device"},
    }
    family["headline"] = headline(family)
    family["targets"] = family_targets(family)
    return {
        "quick": True,
        "finished_at": "now",
        "machine": {
            "cpu": {
                "model": "cpu",
                "cores_usable": 2,
                "flags": {"avx2": True, "avx512_vnni": False},
                "int8_dot_product": False,
            },
            "memory_gib": 8,
            "gpu": None,
            "onnxruntime_providers": ["CPUExecutionProvider"],
            "python": "3.11",
            "platform": "linux",
            "git_commit": "abc",
            "libraries": {"torch": "2"},
            "load_average_1_5_15": [1.0, 1.0, 1.0],
        },
        "families": {"default": family},
        "skipped": [{"what": "text", "reason": "dataset absent"}],
    }


def test_headline_and_targets_of_a_family() -> None:
    family = fake_inference_result()["families"]["default"]
    h = family["headline"]
    assert h["deployed_p50_vs_eager"] == 0.2
    assert h["deployed_size_vs_eager"] == 0.1
    assert h["deployed_metric_drop_vs_eager"] == pytest.approx(0.005)
    assert h["pruning"] == [
        {
            "variant": "pruned-int8",
            "unpruned": "int8",
            "macs_ratio": 3.5,
            "p50_vs_unpruned": 0.5,
            "throughput_vs_unpruned": 2.0,
        }
    ]
    assert h["unstructured"] == {"unstructured": {"p50_vs_fp32": 1.0, "gives_speedup": False}}
    met = {t["target"]: t["met"] for t in family["targets"]}
    assert all(met.values()) and len(met) == 4


def test_pareto_front_keeps_the_undominated() -> None:
    points = {"a": (1.0, 0.90), "b": (2.0, 0.95), "c": (3.0, 0.94), "d": (0.5, 0.80)}
    assert report_format.pareto_front(points, higher_is_better=True) == ["d", "a", "b"]
    rmse = {"a": (1.0, 10.0), "b": (2.0, 9.0), "c": (3.0, 11.0)}
    assert report_format.pareto_front(rmse, higher_is_better=False) == ["a", "b"]


def test_fmt_and_table() -> None:
    assert report_format.fmt(None) == "n/a"
    assert report_format.fmt(True) == "yes"
    assert report_format.fmt(0.000012345) == "1.23e-05"
    assert report_format.fmt(0.123456) == "0.1235"
    assert report_format.fmt("a|b") == "a\\|b"
    assert report_format.table(["x", "y"], [(1, None)]) == ["| x | y |", "|---|---|", "| 1 | n/a |"]


def test_spread_text() -> None:
    assert report_format.spread_text({"n": 1, "median": 2.0}) == "2"
    assert report_format.spread_text({"n": 3, "median": 2.0, "min": 1.0, "max": 3.0}) == "2 [1-3]"
    assert report_format.spread_text(None) == "n/a"


def test_whole_report_from_fabricated_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(common, "RESULTS", tmp_path)
    monkeypatch.setattr(report_plots, "PLOTS", tmp_path / "plots")
    body: dict[str, Any] = fake_inference_result()
    # A family measured in an earlier run carries the machine it was measured on.
    body["families"]["default"]["machine"] = {**body["machine"], "load_average_1_5_15": [9.0]}
    (tmp_path / "inference.json").write_text(json.dumps(body))
    (tmp_path / "run_all.json").write_text(
        json.dumps(
            {
                "quick": True,
                "seconds": 12.0,
                "finished_at": "now",
                "runs": {"inference": {"status": "ok", "seconds": 10.0, "returncode": 0}},
            }
        )
    )
    text = report.build_report()
    assert "## Targets" in text
    assert "default: deployed p50 vs eager fp32 (CPU, batch 1) | 0.2 | <= 0.5 | met" in text
    assert "**pruned-int8**" in text
    assert "Machine: cpu, 2 usable cores; ISA flags: avx2 (absent: avx512_vnni)" in text
    assert "load average [9.0]" in text
    assert "more than one machine" not in text  # same flags: one machine
    vnni = {**body["machine"]["cpu"], "flags": {"avx2": True, "avx512_vnni": True}}
    body["families"]["default"]["machine"] = {**body["machine"], "cpu": vnni}
    (tmp_path / "inference.json").write_text(json.dumps(body))
    assert "**these results come from more than one machine**" in report.build_report()
    assert "variant `fp16` skipped: no GPU" in text
    assert "**no speed-up**" in text
    assert "skipped text: dataset absent" in text
    assert "Missing results" in text and "training" in text
    assert "No results/serving.json" in text


def fake_peer_result() -> dict[str, Any]:
    from benchmarks.optimum_peer import peer_targets

    models = {
        "torch-eager": {**_model(0.9, 90_000_000, 20.0, "pytorch eager"), "side": "baseline"},
        "fp32": {**_model(0.9, 90_000_000, 9.0), "side": "flywheel"},
        "fused-dynamic-int8": {**_model(0.9, 23_000_000, 4.0), "side": "flywheel"},
        "optimum-o3": {**_model(0.9, 90_000_000, 8.0), "side": "optimum"},
        "optimum-o3-avx2": {**_model(0.898, 23_000_000, 5.0), "side": "optimum"},
    }
    body: dict[str, Any] = {
        "machine": fake_inference_result()["machine"],
        "deployed": "fused-dynamic-int8",
        "models": models,
        "intra_op_threads": 1,
        "test_samples": 282,
        "test_width_tokens": 64,
        "preset": {"name": "avx2", "reason": "no VNNI", "cpu_flags": {}},
        "optimum": {"versions": {"optimum": "2.1.0"}},
    }
    body["targets"] = peer_targets(body)
    return body


def test_report_has_the_peer_section_and_its_targets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(common, "RESULTS", tmp_path)
    monkeypatch.setattr(report_plots, "PLOTS", tmp_path / "plots")
    (tmp_path / "optimum_peer.json").write_text(json.dumps(fake_peer_result()))
    text = report.build_report()
    assert "## Optimum peer" in text and "**avx2** dynamic preset (no VNNI)" in text
    assert "| **fused-dynamic-int8** (deployed) | flywheel | 0.9 |" in text
    # 4 ms vs eager's 20: 0.2, not the 0.15 the issue asks for; 4 ms vs Optimum's 5 ms: met.
    assert "sentiment: deployed p50 vs eager fp32 (CPU, batch 1) | 0.2 | <= 0.15 | **not met**" in (
        text
    )
    assert "Optimum's best at equal accuracy (optimum-o3-avx2, batch 1) | 0.8 | <= 1 | met" in text
    assert "ISA flags: avx2 (absent: avx512_vnni); INT8 dot-product" in text
    assert "Missing results" in text  # inference etc. did not run here


def test_a_skipped_peer_says_why() -> None:
    from benchmarks.peer_report import optimum_section

    lines = optimum_section({"skipped": [{"what": "Optimum peer", "reason": "dataset absent"}]})
    assert "- skipped Optimum peer: dataset absent" in lines
