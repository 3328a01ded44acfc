"""The ``flywheel`` command line. Thin: parse, set up logging, call the library, report.

Each command lives with its kind (:mod:`.pipeline`, :mod:`.models`, :mod:`.data`,
:mod:`.service`); every heavy import happens inside the command that needs it, so
``flywheel --help`` stays fast.
"""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer

from flywheel.cli import common

app = typer.Typer(
    help="Flywheel: data change -> validate -> train -> compress -> gate -> deploy.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

LIBRARY_LOGGERS = (
    "great_expectations",
    "dvc",
    "lightning.pytorch",
    "onnxruntime",
    "botocore",
    "boto3",
    "s3fs",
)


@app.callback()
def _main(verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False) -> None:
    common.VERBOSE["on"] = verbose
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(common.TerminalLogFilter())
    # Prefect's client logs every HTTP call at INFO, and the libraries the stages run in this
    # process narrate their internals; a terminal gets their warnings, --verbose the rest.
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if not verbose:
        for chatty in LIBRARY_LOGGERS:
            logging.getLogger(chatty).setLevel(logging.WARNING)


def _register() -> None:
    from flywheel.cli import data, feedback, init, models, pipeline, remote, service

    for module in (init, pipeline, models, service, remote):
        module.register(app)
    data.register(app)
    feedback.register(app)


_register()

if __name__ == "__main__":  # pragma: no cover
    app()
