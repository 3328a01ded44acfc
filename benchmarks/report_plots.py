"""The PNG plots REPORT.md links (a Pareto plot per family)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from benchmarks.common import PLOTS
from benchmarks.report_format import pareto_front


def pareto_plot(name: str, family: Mapping[str, Any]) -> Path | None:
    """Metric vs batch-1 p50 latency of every model of one family, frontier and winner marked."""
    plt = pyplot()
    if plt is None:
        return None
    points = {
        n: (float(m["latency_p50_ms"]), float(m["score"])) for n, m in family["models"].items()
    }
    front = pareto_front(points, bool(family["higher_is_better"]))
    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=110)
    scatter_models(ax, points, family)
    draw_drop_bound(ax, family)
    fx = [points[n][0] for n in front]
    fy = [points[n][1] for n in front]
    ax.step(fx, fy, where="post", color="tab:green", alpha=0.4, label="Pareto frontier")
    label_axes(ax, name, family)
    fig.tight_layout()
    PLOTS.mkdir(parents=True, exist_ok=True)
    path = PLOTS / f"pareto_{name}.png"
    fig.savefig(path)
    plt.close(fig)
    return path


def pyplot() -> Any:
    """matplotlib's pyplot on the file-only backend, or None where matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def point_style(n: str, family: Mapping[str, Any]) -> dict[str, Any]:
    if n == family["winner"]:
        return {"marker": "*", "s": 220, "color": "tab:green", "zorder": 3}
    if n == "torch-eager":
        return {"marker": "s", "s": 70, "color": "tab:red"}
    if n in family["search"].get("report_only", []):
        return {"marker": "x", "s": 70, "color": "tab:gray"}
    return {"marker": "o", "s": 50, "color": "tab:blue"}


def scatter_models(
    ax: Any, points: Mapping[str, tuple[float, float]], family: Mapping[str, Any]
) -> None:
    """One labelled point per model, lowest score first."""
    placed: list[tuple[float, float]] = []
    scores = [s for _, s in points.values()]
    y_span = (max(scores) - min(scores)) or 1.0
    for n, (lat, score) in sorted(points.items(), key=lambda kv: (kv[1][1], kv[1][0])):
        ax.scatter([lat], [score], **point_style(n, family))
        label = f"{n} (deployed)" if n == family["winner"] else n
        # Labels of points close together are stacked instead of printed over each other.
        near = sum(
            1
            for px, py in placed
            if abs(math.log10(px / lat)) < 0.12 and abs(py - score) < 0.04 * y_span
        )
        placed.append((lat, score))
        ax.annotate(
            label, (lat, score), textcoords="offset points", xytext=(6, 4 + 11 * near), fontsize=8
        )


def draw_drop_bound(ax: Any, family: Mapping[str, Any]) -> None:
    """The worst score a variant may have and still be deployed, where the search has one."""
    fp32 = family["models"].get("fp32")
    max_drop = family["search"].get("max_drop")
    if fp32 is None or max_drop is None:
        return
    sign = -1.0 if family["higher_is_better"] else 1.0
    ax.axhline(
        float(fp32["score"]) + sign * float(max_drop),
        color="tab:orange",
        linestyle="--",
        linewidth=1,
        label=(
            f"deployable bound: fp32 {family['metric']} "
            f"{'-' if family['higher_is_better'] else '+'} max_drop"
        ),
    )


def label_axes(ax: Any, name: str, family: Mapping[str, Any]) -> None:
    ax.set_xscale("log")
    ax.margins(x=0.15, y=0.15)  # room for the labels of the outermost points
    ax.set_xlabel("batch-1 p50 latency, ms (log scale; CPU)")
    ax.set_ylabel(f"test {family['metric']}")
    ax.set_title(f"{name} ({family['task']}): {family['metric']} vs latency")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
