"""The Optimum peer's pure parts: the pinned requirements, the preset choice, the pooling
that turns Optimum's encoder output into Flywheel's logits, and the target assembly."""

from __future__ import annotations

import numpy as np
import pytest
from benchmarks.optimum_env import REQUIREMENTS, first_installs, parse_pins, pin_mismatches
from benchmarks.optimum_measure import mean_pool_head
from benchmarks.optimum_peer import best_peer, choose_preset, peer_targets

from benchmarks import targets


def test_the_committed_requirements_pin_what_the_issue_names() -> None:
    pins = parse_pins(REQUIREMENTS.read_text())
    assert {k: pins[k] for k in ("optimum", "optimum-onnx", "transformers", "onnxruntime")} == {
        "optimum": "2.1.0",
        "optimum-onnx": "0.1.0",
        "transformers": "4.57.6",
        "onnxruntime": "1.32.0",
    }
    assert first_installs(pins) == ["torch==2.13.0"]  # alone, before the rest


def test_pins_are_exact_and_checked_against_a_freeze() -> None:
    pins = parse_pins("# peer\nTorch==2.13.0\noptimum_onnx==0.1.0  # why\n\n")
    assert pins == {"torch": "2.13.0", "optimum-onnx": "0.1.0"}
    with pytest.raises(ValueError, match="not pinned"):
        parse_pins("optimum>=2\n")
    freeze = "torch==2.13.0+cpu\noptimum-onnx==0.2.0\nnumpy==2.4.6\n"
    assert pin_mismatches(pins, freeze) == ["optimum-onnx==0.1.0 (found 0.2.0)"]
    assert pin_mismatches({"onnx": "1.23.2"}, freeze) == ["onnx==1.23.2 (found nothing)"]


def test_the_preset_follows_the_cpu_flags() -> None:
    assert choose_preset({"avx2": True, "avx512f": True, "avx512_vnni": True})[0] == "avx512_vnni"
    assert choose_preset({"avx2": True, "avx_vnni": True})[0] == "avx512_vnni"
    assert choose_preset({"avx2": True, "avx512f": True, "avx512bw": True})[0] == "avx512"
    name, why = choose_preset({"avx": True, "avx2": True, "avx512f": False})
    assert name == "avx2" and "no VNNI" in why


def test_mean_pool_head_matches_the_network_it_stands_in_for() -> None:
    torch = pytest.importorskip("torch")
    from flywheel.nn.mlp import mlp

    rng = np.random.default_rng(0)
    states = rng.normal(size=(3, 5, 8)).astype(np.float32)
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0]], dtype=bool)
    head = mlp(8, (6,), 2, dropout=0.0).eval()
    weights = torch.from_numpy(mask).unsqueeze(-1).float()
    # MeanPooledClassifier.forward after the encoder, written out.
    pooled = (torch.from_numpy(states) * weights).sum(1) / weights.sum(1).clamp(min=1.0)
    with torch.no_grad():
        expected = head(pooled).numpy()
    layers = [(m.weight.detach().numpy(), m.bias.detach().numpy()) for m in head[::3]]
    got = mean_pool_head(states, mask, layers)
    assert got.dtype == np.float32 and np.abs(got - expected).max() < 1e-5


def _model(side: str, score: float, p50: float, tput: float) -> dict:
    return {"side": side, "score": score, "latency_p50_ms": p50, "throughput_per_s": tput}


def test_best_peer_compares_only_at_equal_or_better_accuracy() -> None:
    models = {
        "torch-eager": _model("baseline", 0.90, 20.0, 100.0),
        "dynamic-int8": _model("flywheel", 0.90, 5.0, 400.0),
        "optimum-o3": _model("optimum", 0.90, 9.0, 300.0),
        "optimum-o3-avx2": _model("optimum", 0.897, 4.0, 350.0),
        "optimum-o3-bad": _model("optimum", 0.80, 1.0, 900.0),  # fast but 10 points worse
    }
    assert best_peer(models, 0.90, 0.005, "latency_p50_ms", lower=True) == "optimum-o3-avx2"
    assert best_peer(models, 0.90, 0.005, "throughput_per_s", lower=False) == "optimum-o3-avx2"
    assert best_peer(models, 0.95, 0.005, "latency_p50_ms", lower=True) is None

    checks = peer_targets({"models": models, "deployed": "dynamic-int8"})
    by_goal = [(c["measured"], c["goal"], c["met"]) for c in checks]
    assert by_goal[0] == (0.25, f"<= {targets.LATENCY_VS_EAGER['sentiment']:g}", False)
    assert by_goal[1] == (1.25, "<= 1", False)  # 5 ms vs Optimum's 4 ms
    assert by_goal[2] == (0.875, "<= 1", True)  # Optimum's 350/s vs our 400/s
    assert by_goal[3][0] == pytest.approx(0.003) and by_goal[3][2] is True
    assert "optimum-o3-avx2" in checks[1]["target"]


def test_no_peer_at_equal_accuracy_is_not_measured_rather_than_met() -> None:
    models = {
        "torch-eager": _model("baseline", 0.9, 20.0, 100.0),
        "fp32": _model("flywheel", 0.9, 6.0, 200.0),
        "optimum-o3-avx2": _model("optimum", 0.7, 1.0, 900.0),
    }
    checks = peer_targets({"models": models, "deployed": "fp32"})
    assert [c["met"] for c in checks[1:]] == [None, None, None]


def test_the_on_cpu_cross_check_joins_when_every_model_has_it() -> None:
    from benchmarks.optimum_measure import cpu_p50_ms

    runners = {"a": lambda b: np.linalg.svd(np.ones((60, 60)) * b.sum()), "b": lambda b: b}
    cpu = cpu_p50_ms(runners, np.ones((10, 4)), rounds=2, calls=5)
    assert set(cpu) == {"a", "b"} and cpu["a"] > cpu["b"] >= 0.0
    models = {
        "torch-eager": {**_model("baseline", 0.9, 20.0, 100.0), "cpu_latency_p50_ms": 18.0},
        "fused-dynamic-int8": {**_model("flywheel", 0.9, 5.0, 400.0), "cpu_latency_p50_ms": 4.5},
        "optimum-o3-avx2": {**_model("optimum", 0.9, 6.0, 350.0), "cpu_latency_p50_ms": 5.0},
    }
    checks = peer_targets({"models": models, "deployed": "fused-dynamic-int8"})
    assert len(checks) == 5 and "on-CPU" in checks[-1]["target"]
    assert checks[-1]["measured"] == 0.9 and checks[-1]["met"] is True
