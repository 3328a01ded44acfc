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
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    models = family["models"]
    points = {n: (float(m["latency_p50_ms"]), float(m["score"])) for n, m in models.items()}
    front = pareto_front(points, bool(family["higher_is_better"]))
    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=110)
    placed: list[tuple[float, float]] = []
    scores = [s for _, s in points.values()]
    y_span = (max(scores) - min(scores)) or 1.0
    for n, (lat, score) in sorted(points.items(), key=lambda kv: (kv[1][1], kv[1][0])):
        style: dict[str, Any]
        if n == family["winner"]:
            style = {"marker": "*", "s": 220, "color": "tab:green", "zorder": 3}
        elif n == "torch-eager":
            style = {"marker": "s", "s": 70, "color": "tab:red"}
        elif n in family["search"].get("report_only", []):
            style = {"marker": "x", "s": 70, "color": "tab:gray"}
        else:
            style = {"marker": "o", "s": 50, "color": "tab:blue"}
        ax.scatter([lat], [score], **style)
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
    fp32 = models.get("fp32")
    max_drop = family["search"].get("max_drop")
    if fp32 is not None and max_drop is not None:
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
    fx = [points[n][0] for n in front]
    fy = [points[n][1] for n in front]
    ax.step(fx, fy, where="post", color="tab:green", alpha=0.4, label="Pareto frontier")
    ax.set_xscale("log")
    ax.margins(x=0.15, y=0.15)  # room for the labels of the outermost points
    ax.set_xlabel("batch-1 p50 latency, ms (log scale; CPU)")
    ax.set_ylabel(f"test {family['metric']}")
    ax.set_title(f"{name} ({family['task']}): {family['metric']} vs latency")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    PLOTS.mkdir(parents=True, exist_ok=True)
    path = PLOTS / f"pareto_{name}.png"
    fig.savefig(path)
    plt.close(fig)
    return path
