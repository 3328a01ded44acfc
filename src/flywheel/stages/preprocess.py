"""Preprocess stage: read the accepted manifest and hand it to the configured family."""

from __future__ import annotations

import pandas as pd

from flywheel.core.config import Params
from flywheel.core.layout import Layout
from flywheel.families import get_family


def run(params: Params, layout: Layout) -> dict[str, int]:
    accepted = pd.read_csv(
        layout.accepted_manifest, dtype={"path": str, "label": str}, keep_default_na=False
    )
    if not params.is_regression:
        unknown = sorted(set(accepted["label"]) - set(params.labels))
        if unknown:
            raise ValueError(f"accepted manifest holds labels not in validate.labels: {unknown}")
    layout.preprocessed_dir.mkdir(parents=True, exist_ok=True)
    return get_family(params.task).preprocess(params, layout, accepted)
