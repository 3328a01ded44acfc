"""The expectation suite over the dataset manifest, and the GX project that stores it.

The GX project lives at ``layout.expectations`` (``expectations/gx/...``). Everything in it
but the suite JSON (config, data source, checkpoint, Data Docs) is recreated on demand, so a
checkout holding only ``gx/expectations/<suite>.json`` validates as well.
"""

from __future__ import annotations

import json
import os
from contextlib import suppress
from pathlib import Path

import great_expectations as gx
import great_expectations.expectations as gxe
from great_expectations.data_context import AbstractDataContext
from great_expectations.data_context.types.base import ProgressBarsConfig
from great_expectations.exceptions import DataContextError

from flywheel.core.config import Params
from flywheel.core.errors import ConfigError
from flywheel.core.layout import Layout


def open_context(layout: Layout) -> AbstractDataContext:
    """The file-backed GX context at ``layout.expectations``, scaffolded when absent."""
    layout.expectations.mkdir(parents=True, exist_ok=True)
    context = gx.get_context(mode="file", project_root_dir=layout.expectations)
    # A pipeline log has no use for tqdm bars redrawn per metric. Set on every open, as an
    # existing great_expectations.yml may predate it; GX persists it with its next save.
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


def suite_path(layout: Layout, name: str) -> Path:
    return layout.expectations / "gx" / "expectations" / f"{name}.json"


def build_suite(params: Params, *, mostly: float | None = None) -> gx.ExpectationSuite:
    """The checks the dataset manifest must pass: the configured family's, fitted to
    ``params.validate_``. Row-level checks take ``validate.mostly`` unless overridden."""
    from flywheel.families import get_family

    share = params.validate_.mostly if mostly is None else mostly
    expectations = get_family(params.task).expectations(params, share)
    # Through the constructor, not add_expectation: GX's add_expectation writes straight
    # into whichever project is current when a suite of that name exists there.
    return gx.ExpectationSuite(name=params.validate_.suite, expectations=expectations)


def save_suite(params: Params, layout: Layout) -> Path:
    """Write the suite into the GX project (replacing one of the same name); returns its path."""
    context = open_context(layout)
    suite = build_suite(params)
    with suppress(DataContextError):  # a new suite: GX assigns fresh ids
        _keep_ids(suite, context.suites.get(suite.name))
    context.suites.add_or_update(suite)
    path = suite_path(layout, params.validate_.suite)
    if not path.is_file():
        raise ConfigError(f"GX did not write suite {params.validate_.suite!r} to {path}")
    return path


def _keep_ids(suite: gx.ExpectationSuite, stored: gx.ExpectationSuite) -> None:
    """Reuse the stored ids of unchanged expectations, so the committed JSON only changes
    when the checks do. (GX's add_or_update means to, but compares ids as well, so a
    freshly built expectation, which has none yet, never matches.)"""

    def key(e: gxe.Expectation) -> str:
        # The stored JSON form: in-memory models differ in trivia (``meta`` None vs {}).
        config = e.configuration.to_json_dict()
        config.pop("id", None)
        return json.dumps(config, sort_keys=True, default=str)

    stored_ids = {key(e): e.id for e in stored.expectations}
    for expectation in suite.expectations:
        expectation.id = stored_ids.get(key(expectation), expectation.id)
    suite.id = stored.id


def load_suite(context: AbstractDataContext, name: str) -> gx.ExpectationSuite:
    path = Path(str(context.root_directory)) / "expectations" / f"{name}.json"
    if not path.is_file():
        raise ConfigError(
            f"expectation suite {name!r} not found at {os.path.normpath(path)}; create it with "
            "`flywheel init DATA` or `flywheel expectations init --params F`"
        )
    try:
        return context.suites.get(name)
    # GX raises whatever its JSON or pydantic parsing hits on a hand-edited file.
    except Exception as err:
        why = " ".join(str(err).split())[:300]
        raise ConfigError(
            f"expectation suite {os.path.normpath(path)} cannot be loaded ({type(err).__name__}: "
            f"{why}); fix the JSON or regenerate it with `flywheel expectations init --params F`"
        ) from None
