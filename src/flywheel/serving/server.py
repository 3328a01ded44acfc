"""``flywheel serve``: check where the server may listen, then run it under uvicorn."""

from __future__ import annotations

import gc
import logging
from pathlib import Path

from flywheel.core.config import Params
from flywheel.serving.app import create_app_for_root
from flywheel.serving.auth import check_bind, token_from_env


def run_server(
    params: Params, root: Path, host: str | None = None, port: int | None = None
) -> None:
    """Serve the registry's production model until interrupted.

    Binds ``params.serve.host``/``port`` unless given. A non-loopback address needs
    ``FLYWHEEL_API_TOKEN``: without it this raises :class:`~flywheel.core.errors.ConfigError`
    before anything listens.
    """
    import uvicorn

    host = host or params.serve.host
    port = params.serve.port if port is None else port
    token = token_from_env()
    check_bind(host, token)
    logging.getLogger("flywheel.serving").setLevel(logging.INFO)
    app = create_app_for_root(params, Path(root), api_token=token)
    # The libraries leave a great many long-lived objects; a full collection walking them
    # stalls every in-flight request. Frozen, they are never scanned.
    gc.collect()
    gc.freeze()
    # Per-request access lines cost more than the 8x8 model's inference; /metrics counts instead.
    uvicorn.run(app, host=host, port=port, access_log=False, log_level="info")
