"""Validation throughput: the validate stage's machinery on a 1,000,000-row manifest.

A synthetic manifest (unique ``path``, ``label``, ``chars``, ``value``) with 0.1% bad rows
spread over four kinds of fault goes through exactly what the validate stage runs after it
has built the manifest: the Great Expectations checkpoint (result format COMPLETE, offending
rows identified by ``path``, Data Docs updated), the per-row offender collection, and the
quarantine and accepted-manifest CSVs. The suite has five expectations (row count, label in
set, length in range, value not null, path unique), row-level ones with ``mostly=0.99``.
One warm-up run on 10,000 rows, then repeats; rows/s is reported for the validation alone
(checkpoint + collection) and for the stage including its CSV outputs.

    python -m benchmarks.validation_throughput [--quick] [--rows N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks import targets
from benchmarks.common import PROJECT, ratio, spread, write_result

LABELS = tuple(str(i) for i in range(10))
BAD_SHARE = 0.001


def manifest(rows: int, seed: int = 0) -> pd.DataFrame:
    """``rows`` manifest rows; ``BAD_SHARE`` of them broken in one of four ways each."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "path": [f"data/{i:07d}.txt" for i in range(rows)],
            "label": rng.choice(np.array(LABELS), size=rows),
            "chars": rng.integers(20, 2000, size=rows),
            "value": rng.normal(size=rows),
        }
    )
    bad = rng.choice(rows, size=max(4, int(rows * BAD_SHARE)), replace=False)
    kinds = np.array_split(bad, 4)
    frame.loc[kinds[0], "label"] = "unknown"
    frame.loc[kinds[1], "chars"] = 0
    frame.loc[kinds[2], "value"] = np.nan
    frame.loc[kinds[3], "path"] = "data/duplicate.txt"
    return frame


def expectations(mostly: float = 0.99) -> list[Any]:
    import great_expectations.expectations as gxe

    return [
        gxe.ExpectTableRowCountToBeBetween(min_value=1),
        gxe.ExpectColumnValuesToBeInSet(column="label", value_set=list(LABELS), mostly=mostly),
        gxe.ExpectColumnValuesToBeBetween(
            column="chars", min_value=1, max_value=100_000, mostly=mostly
        ),
        gxe.ExpectColumnValuesToNotBeNull(column="value", mostly=mostly),
        gxe.ExpectColumnValuesToBeUnique(column="path", mostly=mostly),
    ]


def suite(name: str, only: int | None = None) -> Any:
    """The five-expectation suite, or just its ``only``-th expectation."""
    import great_expectations as gx

    chosen = expectations()
    if only is not None:
        chosen = [chosen[only]]
    return gx.ExpectationSuite(name=name, expectations=chosen)


def validate_once(
    frame: pd.DataFrame, context: Any, out: Path, name: str, only: int | None = None
) -> dict[str, Any]:
    """One pass of the validate stage over ``frame``, timed by part."""
    # The stage's own steps (flywheel.stages.validate.run.validate_dataset minus building the
    # manifest from files), so the figure is the stage's, not a re-implementation's.
    from flywheel.stages.validate import run as stage

    expectations = suite(name, only)
    t0 = time.perf_counter()
    with stage._quiet_docs_renderer():
        result = stage._checkpoint(context, expectations).run(batch_parameters={"dataframe": frame})
    t1 = time.perf_counter()
    (suite_result,) = result.run_results.values()
    results, offenders = stage._collect(expectations, suite_result)
    rejected = frame["path"].isin(list(offenders))
    t2 = time.perf_counter()
    stage._write_quarantine(frame[rejected], offenders, out / "quarantine.csv")
    stage._write_accepted(frame[~rejected], ("path", "label"), out / "manifest.csv")
    t3 = time.perf_counter()
    return {
        "checkpoint_s": round(t1 - t0, 3),
        "collect_s": round(t2 - t1, 3),
        "write_s": round(t3 - t2, 3),
        "validation_s": round(t2 - t0, 3),
        "stage_s": round(t3 - t0, 3),
        "rejected_rows": int(rejected.sum()),
        "failed_expectations": [r["expectation"] for r in results if not r["success"]],
        "expectations": len(results),
        "expectations_run": [r["expectation"] for r in results],
    }


def run(rows: int, repeats: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-validation-") as tmp:
        return _run(rows, repeats, Path(tmp))


def _run(rows: int, repeats: int, root: Path) -> dict[str, Any]:
    from flywheel.core.layout import Layout
    from flywheel.stages.validate.suite import open_context

    layout = Layout(root, root / "artifacts", root / "registry", root / "expectations", root)
    context = open_context(layout)
    out = root / "out"
    out.mkdir()
    t0 = time.perf_counter()
    frame = manifest(rows)
    build_s = round(time.perf_counter() - t0, 3)
    warm = validate_once(manifest(10_000, seed=1), context, out, "bench")
    passes = []
    for i in range(repeats):
        passes.append(validate_once(frame, context, out, "bench"))
        print(f"validation: pass {i + 1}: {passes[-1]['validation_s']}s for {rows} rows")
    # Each expectation alone on the full table: which check the time goes to (each figure
    # includes the checkpoint's fixed cost, about the 10,000-row warm-up's).
    alone = {}
    if repeats > 1:
        for i in range(len(expectations())):
            one = validate_once(frame, context, out, f"bench-only-{i}", only=i)
            alone[one["expectations_run"][0]] = one["validation_s"]
    validation = spread(p["validation_s"] for p in passes)
    stage_s = spread(p["stage_s"] for p in passes)
    rows_per_s = round(rows / validation["median"], 1)
    return {
        "rows": rows,
        "repeats": repeats,
        "bad_share": BAD_SHARE,
        "manifest_build_s": build_s,
        "warmup": warm,
        "passes": passes,
        "validation_seconds": validation,
        "stage_seconds": stage_s,
        "validation_rows_per_s": rows_per_s,
        "stage_rows_per_s": round(rows / stage_s["median"], 1),
        "validation_share_of_stage": ratio(validation["median"], stage_s["median"]),
        "each_expectation_alone_s": alone,
        "targets": [
            targets.check(
                f"validation rows/s, {len(suite('x').expectations)}-expectation suite",
                rows_per_s,
                targets.VALIDATION_ROWS_PER_S,
                at_most=False,
            )
        ],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 rows, one pass")
    parser.add_argument("--rows", type=int, help="manifest rows (default 1,000,000)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    rows = args.rows or (100_000 if args.quick else 1_000_000)
    body = run(rows, 1 if args.quick else 3)
    body["quick"] = args.quick
    path = write_result("validation_throughput", body, started)
    print(f"written {path.relative_to(PROJECT)}")


if __name__ == "__main__":
    main()
