"""``GET /data-docs/...``: the workspace's Great Expectations Data Docs over HTTP.

A Prefect run page links a failed validation to its Data Docs page; a browser will not
open a ``file://`` link from a web page, so the model server serves the site read-only.
Starlette's :class:`~starlette.staticfiles.StaticFiles` does the serving: GET and HEAD
only, paths resolved and kept inside the site folder (``..`` and symlinks leading out are
404), ``index.html`` for folders. The route sits behind the same bearer-token middleware as
every other route; the site is read when asked, so docs written after start-up are served.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from starlette.staticfiles import StaticFiles

from flywheel.core.layout import Layout

PREFIX = "/data-docs"


def site_dir(layout: Layout) -> Path:
    """Where the validate stage's GX context writes the ``local_site`` Data Docs."""
    return layout.expectations / "gx" / "uncommitted" / "data_docs" / "local_site"


def url(host: str, port: int, page: str | None = None) -> str:
    """The address of the site (or of one page in it) on a server at ``host:port``."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}{PREFIX}/{page or 'index.html'}"


class _Site(StaticFiles):
    """The site appears with the first validation, maybe after start-up: until then every
    path is a 404 (Starlette would fail the first request over the missing folder)."""

    async def check_config(self) -> None:
        if self.directory is not None and Path(self.directory).is_dir():
            await super().check_config()


def router(layout: Layout) -> APIRouter:
    routes = APIRouter()
    routes.mount(PREFIX, _Site(directory=site_dir(layout), html=True, check_dir=False))
    return routes
