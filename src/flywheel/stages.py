"""The body of each DVC stage: load the workspace's params, call the library, report.

Each runs with the workspace as its working directory (``dvc repro`` runs ``flywheel stage``
there; the flow calls :func:`run_stage` in-process through :func:`flywheel.dvc_ops.reproduce`)
and reads its ``params.yaml``; imports are inside the functions so a stage loads only what
it uses.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flywheel.config import Params, load_params
from flywheel.layout import Layout

log = logging.getLogger(__name__)


def _validate(params: Params, layout: Layout) -> Any:
    from flywheel.validation.run import validate_dataset

    report = validate_dataset(params, layout)
    return {"suite": report.suite, "rows": report.total_rows, "rejected": report.rejected_rows}


def _preprocess(params: Params, layout: Layout) -> Any:
    from flywheel.preprocess import run_preprocess

    return run_preprocess(params, layout, layout.validation_dir / "manifest.csv")


def _train(params: Params, layout: Layout) -> Any:
    from flywheel.training import run_train

    return run_train(params, layout)


def _export(params: Params, layout: Layout) -> Any:
    from flywheel.export import run_export

    return run_export(params, layout)


def _compress(params: Params, layout: Layout) -> Any:
    from flywheel.compress.run import run_compress

    return run_compress(params, layout)


def _evaluate(params: Params, layout: Layout) -> Any:
    from flywheel.evaluate import run_evaluate

    return run_evaluate(params, layout)


STAGE_FUNCTIONS: dict[str, Callable[[Params, Layout], Any]] = {
    "validate": _validate,
    "preprocess": _preprocess,
    "train": _train,
    "export": _export,
    "compress": _compress,
    "evaluate": _evaluate,
}


def run_stage(name: str, workspace: Path = Path()) -> Any:
    params = load_params(workspace / "params.yaml")
    result = STAGE_FUNCTIONS[name](params, Layout.from_params(params, workspace))
    log.debug("stage %s: %s", name, json.dumps(result, default=str)[:2000])
    return result
