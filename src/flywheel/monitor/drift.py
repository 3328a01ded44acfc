"""Drift tests between a reference profile and a window of production columns.

scipy.stats directly, not Evidently: Evidently's data-drift preset runs these same tests
(two-sample Kolmogorov-Smirnov for numeric columns, chi-square against the reference
proportions for categorical ones), but no Evidently release imports under this project's
pandas 3 pin, and it would add ~280 MB and seconds of import to reach the same numbers
(see README, "Monitoring"). Also reported: the population stability index of categorical
columns, which reads better than a p-value on a dashboard.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

from flywheel.monitor.features import Columns

# Share given to a category production sends but the reference never had: chi-square and
# PSI are undefined against an expected count of zero.
_UNSEEN = 1e-4


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    kind: str  # "numeric" | "categorical"
    test: str  # "ks" | "chi2"
    statistic: float
    p_value: float
    drifted: bool
    reference_n: int
    current_n: int
    psi: float | None = None

    def as_row(self) -> dict[str, Any]:
        row = asdict(self)
        for key in ("statistic", "p_value", "psi"):
            if row[key] is not None:
                row[key] = round(float(row[key]), 6)
        return row


def numeric_drift(
    name: str, reference: list[float], current: list[float], alpha: float
) -> FeatureDrift:
    result = stats.ks_2samp(np.asarray(reference), np.asarray(current))
    p_value = float(result.pvalue)
    return FeatureDrift(
        name,
        "numeric",
        "ks",
        float(result.statistic),
        p_value,
        p_value < alpha,
        len(reference),
        len(current),
    )


def categorical_drift(
    name: str, proportions: dict[str, float], reference_n: int, current: list[str], alpha: float
) -> FeatureDrift:
    counts = Counter(current)
    categories = sorted(set(proportions) | set(counts))
    expected_share = np.array([proportions.get(c, 0.0) or _UNSEEN for c in categories])
    expected_share /= expected_share.sum()
    observed = np.array([counts.get(c, 0) for c in categories], dtype=np.float64)
    n = observed.sum()
    if len(categories) < 2 or n == 0:
        statistic, p_value = 0.0, 1.0
    else:
        result = stats.chisquare(observed, expected_share * n)
        statistic, p_value = float(result.statistic), float(result.pvalue)
    actual_share = np.maximum(observed / max(n, 1.0), _UNSEEN)
    psi = float(np.sum((actual_share - expected_share) * np.log(actual_share / expected_share)))
    return FeatureDrift(
        name,
        "categorical",
        "chi2",
        statistic,
        p_value,
        p_value < alpha,
        reference_n,
        int(n),
        psi,
    )


def compare(reference: dict[str, Any], current: Columns, alpha: float) -> list[FeatureDrift]:
    """One result per column present in both the reference and the window."""
    out = []
    for name, ref in sorted(reference.get("numeric", {}).items()):
        values = current.numeric.get(name) or []
        if values and ref["sample"]:
            out.append(numeric_drift(name, ref["sample"], values, alpha))
    for name, ref in sorted(reference.get("categorical", {}).items()):
        labels = current.categorical.get(name) or []
        if labels:
            out.append(categorical_drift(name, ref["proportions"], ref["n"], labels, alpha))
    return out


def drift_share(results: list[FeatureDrift]) -> float:
    return sum(r.drifted for r in results) / len(results) if results else 0.0
