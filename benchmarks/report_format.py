"""The formatting helpers every REPORT.md section uses: markdown tables, numbers, marks."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """A markdown table; cells are formatted with :func:`fmt`."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(c) for c in row) + " |" for row in rows]
    return lines


def fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
            return f"{value:.3g}"
        return f"{value:.4g}"
    return str(value).replace("|", "\\|")


def one_line(text: str, limit: int = 400) -> str:
    """A reason as one markdown line: error output keeps its first lines only."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def met_mark(met: bool | None) -> str:
    return {True: "met", False: "**not met**", None: "not measured"}[met]


def pareto_front(points: Mapping[str, tuple[float, float]], higher_is_better: bool) -> list[str]:
    """Names of the points no other point beats on both latency (lower) and score."""

    def better_or_equal(a: float, b: float) -> bool:
        return a >= b if higher_is_better else a <= b

    front = []
    for name, (lat, score) in points.items():
        dominated = any(
            other != name
            and o_lat <= lat
            and better_or_equal(o_score, score)
            and (o_lat < lat or o_score != score)
            for other, (o_lat, o_score) in points.items()
        )
        if not dominated:
            front.append(name)
    return sorted(front, key=lambda n: points[n][0])


def spread_text(s: Mapping[str, Any] | None, digits: int = 4) -> str:
    """``median [min-max]`` of a :func:`benchmarks.common.spread` record."""
    if not s or not s.get("n"):
        return "n/a"
    if s["n"] == 1:
        return f"{s['median']:.{digits}g}"
    return f"{s['median']:.{digits}g} [{s['min']:.{digits}g}-{s['max']:.{digits}g}]"
