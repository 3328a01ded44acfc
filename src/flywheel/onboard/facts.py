"""Facts about a manifest, and a trial of the suite on it, through Great Expectations.

GX 1.x dropped its profilers (no ``UserConfigurableProfiler``, no rule-based profiler, no
onboarding assistant in 1.24), but kept metrics: ``Batch.compute_metrics`` with row counts,
per-column min/max, distinct values and null counts. The ranges and value sets init writes
are computed with those, on the very manifest table the validate stage checks, so a bound
init writes is the bound GX measures (its treatment of nulls and NaN included). Shares,
percentiles and types, which GX's metrics do not offer, come from pandas.

:func:`trial` runs a suite over the manifest in an in-memory GX context, the way the
validate stage does, to find the rows it would quarantine before anything is written.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import pandas as pd


@dataclass(frozen=True)
class ColumnFacts:
    nulls: int
    low: float | None = None
    high: float | None = None
    values: tuple[str, ...] = ()  # distinct non-null values, sorted (categorical columns)


@contextlib.contextmanager
def _no_progress_bars() -> Iterator[None]:
    """``Batch.compute_metrics`` draws tqdm bars whatever the context's progress-bar
    setting (GX 1.24 passes ``show_progress_bars=True``); they go to a discarded stream."""
    with contextlib.redirect_stderr(io.StringIO()):
        yield


@cache
def _context() -> Any:
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    # GX announces the temporary folder of an in-memory context at INFO; nothing to act on.
    logging.getLogger("great_expectations.data_context.types.base").setLevel(logging.WARNING)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


_BATCHES = {"n": 0}


def _batch(frame: pd.DataFrame) -> Any:
    # A fresh asset per frame: GX keys assets by name within the (cached) context.
    _BATCHES["n"] += 1
    source = _context().data_sources.add_pandas(f"init-{_BATCHES['n']}")
    asset = source.add_dataframe_asset("manifest")
    definition = asset.add_batch_definition_whole_dataframe("whole")
    return definition.get_batch(batch_parameters={"dataframe": frame.reset_index(drop=True)})


def column_facts(
    frame: pd.DataFrame,
    numeric: Sequence[str] = (),
    categorical: Sequence[str] = (),
) -> dict[str, ColumnFacts]:
    """Null counts of every named column; min/max of ``numeric``; values of ``categorical``."""
    from great_expectations import metrics as gm

    if frame.empty:
        return {c: ColumnFacts(0) for c in (*numeric, *categorical)}
    requests: list[Any] = []
    for name in (*numeric, *categorical):
        requests.append(gm.ColumnNullCount(column=name))
    requests += [gm.ColumnDescriptiveStats(column=name) for name in numeric]
    requests += [gm.ColumnDistinctValues(column=name) for name in categorical]
    with _no_progress_bars():
        results = _batch(frame).compute_metrics(requests)
    names = [*numeric, *categorical]
    nulls = {name: int(r.value) for name, r in zip(names, results[: len(names)], strict=True)}
    out: dict[str, ColumnFacts] = {}
    stats = results[len(names) : len(names) + len(numeric)]
    for name, result in zip(numeric, stats, strict=True):
        # An all-blank column has no statistics: GX answers with an error result.
        value: Any = getattr(result, "value", None)
        low, high = (
            (_finite(value.min), _finite(value.max)) if hasattr(value, "min") else (None, None)
        )
        out[name] = ColumnFacts(nulls[name], low, high)
    for name, result in zip(categorical, results[len(names) + len(numeric) :], strict=True):
        values = sorted(str(v) for v in (result.value or ()) if not _missing(v))
        out[name] = ColumnFacts(nulls[name], values=tuple(values))
    return out


def _finite(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


@dataclass(frozen=True)
class Trial:
    success: bool
    failed: tuple[str, ...]  # failed expectations, in suite order
    offenders: dict[str, list[str]]  # path -> expectations its row fails


def trial(frame: pd.DataFrame, suite: Any) -> Trial:
    """``suite`` over ``frame`` as the validate stage runs it (same result format)."""
    from flywheel.stages.validate.run import RESULT_FORMAT, collect_results

    with _no_progress_bars():
        result = _batch(frame).validate(suite, result_format=RESULT_FORMAT)
    summaries, offenders = collect_results(suite, result)
    failed = tuple(s["expectation"] for s in summaries if not s["success"])
    return Trial(not failed, failed, offenders)
