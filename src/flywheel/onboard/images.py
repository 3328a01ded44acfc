"""An image folder's profile: labels, formats, modes and sizes, and the CNN they call for."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from flywheel.core.errors import DataError
from flywheel.families.image.manifest import build_manifest
from flywheel.onboard.decision import (
    Decision,
    add_gate_floor,
    add_labels,
    add_row_limits,
    n,
)
from flywheel.onboard.facts import column_facts
from flywheel.onboard.scan import KindChoice

# Pillow modes without colour; anything else (RGB, RGBA, P, CMYK, ...) is a colour image.
GREY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "F"})
# Every image is resized to one square; past this side a small CNN on a CPU gains little.
MAX_SIDE = 64


def names(items: list[str] | tuple[str, ...]) -> str:
    more = f" and {len(items) - 3} more" if len(items) > 3 else ""
    return ", ".join(items[:3]) + more


def add_pattern(decision: Decision, choice: KindChoice) -> None:
    """``data.pattern`` where the reader's default would read stray files, and findings
    naming the strays left out and those still read (the suite quarantines them)."""
    read = set(choice.notes)
    left_out = [e.rel for e in choice.strays if e.rel not in read]
    if choice.pattern:
        comment = f"leaves out {names(left_out)}" if left_out else ""
        decision.add("data", "pattern", choice.pattern, comment)
    if left_out:
        decision.find("left out", names(left_out))
    if choice.notes:
        decision.find("quarantined", f"{names(choice.notes)}: read, then rejected by the suite")


def profile_images(decision: Decision, root: Path, choice: KindChoice) -> None:
    add_pattern(decision, choice)
    manifest = build_manifest(root, choice.pattern)
    labelled = manifest[manifest["label"] != ""]
    counts = labelled.groupby("label")["path"].count()
    if len(counts) < 2:
        raise DataError(
            f"{root} has {len(counts)} label folder(s) ({', '.join(map(str, counts.index))}): "
            "a classifier needs at least two, one sub-folder of images per label"
        )
    readable = labelled[labelled["readable"]]
    if readable.empty:
        raise DataError(f"none of the {n(len(labelled))} files under {root} opens as an image")
    decision.manifest = manifest
    decision.find("data", f"image folder: {n(len(manifest))} files in {len(counts)} label folders")
    decision.note("data", "path", f"{n(len(manifest))} image files in {len(counts)} label folders")
    add_labels(decision, counts, "label folders")
    _add_image_keys(decision, readable)
    add_row_limits(decision, counts, len(manifest))
    add_gate_floor(decision, counts)


def _add_image_keys(decision: Decision, readable: pd.DataFrame) -> None:
    facts = column_facts(readable, numeric=["width", "height"], categorical=["mode", "format"])
    modes, formats = facts["mode"].values, facts["format"].values
    colour = [m for m in modes if m not in GREY_MODES]
    mode = "RGB" if colour else "L"
    w, h = facts["width"], facts["height"]
    sizes = f"{_span(w.low, w.high)} x {_span(h.low, h.high)}"
    short = readable[["width", "height"]].min(axis=1)
    side = int(min(MAX_SIDE, short.median()))
    size = side - side % 4 if side >= 16 else max(side, 4)
    decision.add(
        "image",
        "mode",
        mode,
        f"modes seen: {', '.join(modes)}" + (" (colour: converted to RGB)" if colour else ""),
    )
    decision.add(
        "image",
        "size",
        size,
        f"sizes {sizes}, median short side {int(short.median())}: all resized to {size}x{size}",
    )
    if colour:
        decision.add(
            "image",
            "augment",
            True,
            "photos: random flips and crops in training (false if a mirror image is another class)",
        )
    if size > 16:
        decision.add("model", "channels", [16, 32, 64], f"three conv blocks for {size}px inputs")
    decision.add("validate", "allowed_modes", sorted({*modes, mode}), "the modes seen")
    decision.add("validate", "allowed_formats", list(formats), "the formats seen")
    for key, value in (
        ("min_width", w.low),
        ("max_width", w.high),
        ("min_height", h.low),
        ("max_height", h.high),
    ):
        decision.add("validate", key, int(value or 1), "as seen")
    decision.find(
        "images",
        f"{', '.join(formats)}; modes {', '.join(modes)}; {sizes} px -> {mode} {size}x{size}",
    )


def _span(low: float | None, high: float | None) -> str:
    lo, hi = int(low or 0), int(high or 0)
    return str(lo) if lo == hi else f"{lo}-{hi}"
