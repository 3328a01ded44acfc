"""From a profiled table to a task: text classification (text + label) or regression."""

from __future__ import annotations

import math
from pathlib import Path

from flywheel.core.errors import DataError
from flywheel.core.sections import EvaluateConfig
from flywheel.families.tabular.manifest import build_tabular_manifest
from flywheel.families.text.sources import read_text_examples
from flywheel.onboard.decision import Decision, add_row_limits, provisional
from flywheel.onboard.facts import ColumnFacts, column_facts
from flywheel.onboard.scan import KindChoice
from flywheel.onboard.tables import (
    LABEL_NAMES,
    MAX_CATEGORIES,
    TARGET_NAMES,
    Column,
    add_format,
    by_name,
    describe,
    pick,
    read,
    rows_text,
    table_format,
)
from flywheel.onboard.texts import PLACEHOLDER_LABELS, finish_text

TEXT_TASKS = ("text_classification", "sentiment")
# A numeric column with at least this many distinct values is a quantity, not a label.
CONTINUOUS = 20
# Parity of ONNX and PyTorch outputs: within this share of the largest target, float32's
# ~7 digits and a few roundings apart; never tighter than the section's default.
PARITY_SHARE = 1e-6
EXPORT_ATOL = EvaluateConfig().export_atol


def table_task(columns: list[Column], task: str | None, target: str | None) -> str:
    """The task a table fits: ``task`` if given, else text + label -> text classification,
    numbers -> regression."""
    if task is not None:
        return task
    texty = [c for c in columns if c.texty]
    if target is not None:
        chosen = pick(columns, target, "label or target")
        continuous = chosen.numeric and chosen.distinct >= CONTINUOUS
        return "tabular_regression" if continuous or not texty else "text_classification"
    labels = [c for c in columns if c.few_values and not c.texty]
    return "text_classification" if texty and labels else "tabular_regression"


def profile_table(
    decision: Decision, root: Path, choice: KindChoice, task: str | None, target: str | None
) -> None:
    fmt = table_format(root, choice)
    table = read(root, fmt, choice.pattern)
    columns = describe(table, fmt.header)
    decision.task = table_task(columns, task, target)
    decision.add(None, "task", decision.task)
    add_format(decision, fmt, choice, root)
    decision.find("columns", rows_text(table, columns))
    decision.note("data", "path", rows_text(table, columns))
    if decision.task in TEXT_TASKS:
        _text_columns(decision, columns, target)
        params = provisional(decision, labels=list(PLACEHOLDER_LABELS))
        finish_text(decision, read_text_examples(params, root), "label values", fmt.encoding)
    elif decision.task == "tabular_regression":
        _regression_columns(decision, columns, target)
        _regression_rules(decision, root)
    else:
        raise DataError(
            f"--task {decision.task}: a table cannot train it; tables train "
            "text_classification, sentiment or tabular_regression"
        )


def _text_columns(decision: Decision, columns: list[Column], target: str | None) -> None:
    texty = sorted((c for c in columns if c.texty), key=lambda c: -c.mean_chars)
    if not texty:
        raise DataError(
            f"no column holds text ({_shown(columns)}): {decision.task} needs a column of "
            "sentences or documents beside the label"
        )
    label: Column | None
    if target is not None:
        label = pick(columns, target, "label")
    else:
        candidates = [c for c in columns if c.few_values and not c.texty]
        label = by_name(candidates, LABEL_NAMES) or min(
            candidates, key=lambda c: c.distinct, default=None
        )
    if label is None:
        raise DataError(f"no column looks like a label ({_shown(columns)}): pass --target COLUMN")
    text = texty[0]
    decision.add(
        "data", "text_column", text.ref, f"the longest texts (mean {text.mean_chars:.0f} chars)"
    )
    others = [c for c in texty[1:] if c.ref != label.ref]
    if len(others) == 1:
        decision.add("data", "title_column", others[0].ref, "shorter text: joined before it")
    decision.add("data", "label_column", label.ref, f"{label.distinct} distinct values")
    title = f", title {others[0].ref!r}" if len(others) == 1 else ""
    decision.find("roles", f"text {text.ref!r}{title}, label {label.ref!r}")


def _shown(columns: list[Column]) -> str:
    return ", ".join(f"{c.ref!r}" for c in columns[:8])


def _regression_columns(decision: Decision, columns: list[Column], target: str | None) -> None:
    numeric = [c for c in columns if c.numeric]
    goal: Column | None
    if target is not None:
        goal = pick(columns, target, "target")
    else:
        named = by_name(numeric, TARGET_NAMES)
        continuous = [c for c in numeric if c.distinct >= CONTINUOUS]
        goal = named or (continuous[-1] if continuous else None)
    if goal is None or not goal.numeric:
        raise DataError(
            f"no numeric column to predict ({_shown(columns)}): pass --target COLUMN "
            "naming a column of numbers"
        )
    features = [c for c in numeric if c.ref != goal.ref and not _id_like(c)]
    categories = [
        c for c in columns if not c.numeric and not c.texty and 1 <= c.distinct <= MAX_CATEGORIES
    ]
    unused = [c for c in columns if c not in (goal, *features, *categories)]
    if not features and not categories:
        raise DataError(
            f"no feature columns beside target {goal.ref!r}: nothing to predict it from"
        )
    decision.add("data", "target", goal.ref, "what the model predicts")
    decision.add("data", "numeric_columns", [c.ref for c in features], "every cell a number")
    decision.add(
        "data",
        "categorical_columns",
        [c.ref for c in categories],
        f"{MAX_CATEGORIES} values or fewer",
    )
    decision.add("gate", "min_r2", 0.0, "the first model must beat predicting the mean")
    decision.find(
        "roles", f"target {goal.ref!r}; {len(features)} numeric, {len(categories)} categorical"
    )
    if unused:
        decision.find("unused", ", ".join(f"{c.ref!r}" for c in unused) + " (ids or free text)")


def _id_like(column: Column) -> bool:
    return column.distinct == column.filled and column.name.lower() in ("id", "index", "key")


def _regression_rules(decision: Decision, root: Path) -> None:
    """``validate.columns``: every column's range or categories and its blank share."""
    params = provisional(decision)
    manifest = build_tabular_manifest(params, root)
    raw = decision.raw()["data"]
    numeric = [str(c) for c in raw["numeric_columns"]] + [str(raw["target"])]
    categorical = [str(c) for c in raw["categorical_columns"]]
    facts = column_facts(manifest, numeric=numeric, categorical=categorical)
    total = len(manifest)
    for name in (*numeric, *categorical):
        fact = facts[name]
        rule: dict[str, object] = {}
        if name in numeric:
            rule = {"min": fact.low, "max": fact.high}
            seen = f"seen {_num(fact.low)} to {_num(fact.high)}"
        else:
            rule = {"categories": list(fact.values)}
            seen = f"{len(fact.values)} categories"
        if fact.nulls and name != str(raw["target"]):
            share = math.ceil(fact.nulls / total * 100) / 100
            rule["max_null_share"] = share
            seen += f"; {fact.nulls / total:.1%} blank (imputed)"
        decision.add("validate", f"columns.{name}", rule, seen)
    decision.manifest = manifest
    add_row_limits(decision, None, total)
    _export_tolerance(decision, facts[str(raw["target"])])


def _export_tolerance(decision: Decision, target: ColumnFacts) -> None:
    """The export parity check compares float32 outputs in target units: near large values
    their rounding alone exceeds the default tolerance, so it scales with the target."""
    scale = max(abs(target.low or 0.0), abs(target.high or 0.0)) * PARITY_SHARE
    if scale <= EXPORT_ATOL:
        return
    step = 10.0 ** math.floor(math.log10(scale))
    atol = math.ceil(scale / step) * step
    decision.add(
        "evaluate",
        "export_atol",
        float(f"{atol:.1g}"),
        f"targets reach {_num(max(abs(target.low or 0), abs(target.high or 0)))}: "
        "float32 rounding, not a mismatch",
    )


def _num(value: float | None) -> str:
    if value is None:
        return "?"
    return f"{value:,.6g}"
