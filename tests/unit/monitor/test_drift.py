"""The drift tests, the per-family statistics they run on, and live accuracy."""

from __future__ import annotations

import base64

import numpy as np

from flywheel.datasets.png import encode_png
from flywheel.monitor.drift import categorical_drift, compare, drift_share, numeric_drift
from flywheel.monitor.features import Columns, instance_features, prediction_features
from flywheel.monitor.reference import profile
from flywheel.monitor.report import live_quality


def test_a_shifted_numeric_column_drifts_and_a_resample_does_not() -> None:
    rng = np.random.default_rng(0)
    reference = rng.normal(0, 1, 1000).tolist()
    assert not numeric_drift("x", reference, rng.normal(0, 1, 500).tolist(), 0.01).drifted
    shifted = numeric_drift("x", reference, rng.normal(1, 1, 500).tolist(), 0.01)
    assert shifted.drifted and shifted.p_value < 1e-6 and shifted.test == "ks"


def test_categorical_drift_handles_unseen_and_single_categories() -> None:
    same = categorical_drift("c", {"a": 0.5, "b": 0.5}, 100, ["a", "b"] * 50, 0.01)
    moved = categorical_drift("c", {"a": 0.5, "b": 0.5}, 100, ["a"] * 90 + ["z"] * 10, 0.01)
    alone = categorical_drift("c", {"a": 1.0}, 100, ["a"] * 10, 0.01)
    assert not same.drifted and same.psi is not None and abs(same.psi) < 1e-9
    assert moved.drifted and moved.psi is not None and moved.psi > 0.2
    assert not alone.drifted and alone.p_value == 1.0


def test_every_family_reduces_to_columns() -> None:
    png = base64.b64encode(encode_png(np.full((8, 8), 200, np.uint8))).decode()
    image = instance_features("image_classification", [{"suffix": ".png", "b64": png}])
    assert image.numeric["width"] == [8.0] and image.numeric["brightness"][0] > 0.7
    text = instance_features(
        "sentiment", [{"suffix": ".instance.json", "json": "a good day"}], {"good", "day"}
    )
    assert (
        text.numeric["n_words"] == [3.0] and abs(text.numeric["vocab_coverage"][0] - 2 / 3) < 1e-9
    )
    table = instance_features(
        "tabular_regression", [{"suffix": ".instance.json", "json": {"x": 1.5, "band": "60+"}}]
    )
    assert table.numeric == {"x": [1.5]} and table.categorical == {"band": ["60+"]}
    predictions = prediction_features(Columns(), [{"label": "pos"}, {"value": 2.0}])
    assert predictions.categorical == {"prediction": ["pos"]}
    assert predictions.numeric == {"prediction_value": [2.0]}


def test_a_profile_compares_with_itself_without_drift() -> None:
    rng = np.random.default_rng(1)
    entries = [{"suffix": ".instance.json", "json": {"x": float(v)}} for v in rng.normal(0, 1, 400)]
    predictions = [{"label": "pos" if e["json"]["x"] > 0 else "neg"} for e in entries]
    reference = profile("tabular_regression", "v0001", entries, predictions)
    window = instance_features("tabular_regression", entries[:200])
    prediction_features(window, predictions[:200])
    results = compare(reference, window, 0.01)
    assert {r.feature for r in results} == {"x", "prediction"}
    assert drift_share(results) == 0.0


def test_live_quality_uses_the_logged_prediction() -> None:
    feedback = [
        {"prediction": {"label": "pos"}, "label": "pos"},
        {"prediction": {"label": "pos"}, "label": "neg"},
        {"prediction": {"value": 3.0}, "label": 1.0},
    ]
    quality = live_quality(feedback)
    assert quality == {"feedback_in_window": 3, "live_accuracy": 0.5, "live_mae": 2.0}
