"""ONNX Runtime graph optimisation levels: the default stays unless another is clearly faster."""

from __future__ import annotations

from flywheel.stages.compress.levels import fastest_level, levels


def test_fastest_level_keeps_the_default_within_noise() -> None:
    assert "all" in levels() and "disabled" in levels()
    assert fastest_level({"disabled": 2.0, "basic": 1.0, "all": 1.0}, 0.03) == "all"
    assert fastest_level({"disabled": 2.0, "basic": 0.98, "all": 1.0}, 0.03) == "all"
    assert (
        fastest_level({"disabled": 2.0, "basic": 0.9, "extended": 0.9, "all": 1.0}, 0.03) == "basic"
    )
    assert fastest_level({"disabled": 2.0, "basic": 1.0}, 0.03) == "basic"
