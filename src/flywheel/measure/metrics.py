"""Metrics over model outputs, the same for training reports, evaluation and the gate."""

from __future__ import annotations

import numpy as np

from flywheel.core.sections import LOWER_IS_BETTER


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return np.asarray(exp / exp.sum(axis=1, keepdims=True))


def classification_metrics(outputs: np.ndarray, y: np.ndarray) -> dict[str, float]:
    return {"accuracy": float((outputs.argmax(axis=1) == y).mean()) if len(y) else float("nan")}


def regression_metrics(outputs: np.ndarray, y: np.ndarray) -> dict[str, float]:
    pred = outputs.reshape(len(outputs), -1)[:, 0].astype(np.float64)
    target = y.astype(np.float64)
    err = pred - target
    total = float(((target - target.mean()) ** 2).sum())
    return {
        "rmse": float(np.sqrt((err**2).mean())),
        "mae": float(np.abs(err).mean()),
        "r2": 1.0 - float((err**2).sum()) / total if total > 0 else float("nan"),
    }


def compute_metrics(outputs: np.ndarray, y: np.ndarray, regression: bool) -> dict[str, float]:
    return regression_metrics(outputs, y) if regression else classification_metrics(outputs, y)


def worse_by(metric: str, reference: float, value: float) -> float:
    """How much worse ``value`` is than ``reference`` (positive = worse), for either direction."""
    return value - reference if metric in LOWER_IS_BETTER else reference - value
