"""The run page's Data Docs link goes over HTTP only when a real model server answers that
very page (another server on the port does not count); the token, when set, is sent."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn
from flows.artifacts import _served

from flywheel.core.config import parse_params
from flywheel.core.layout import Layout
from flywheel.serving import routes_docs
from flywheel.serving.app import create_app

PAGE = "validations/s/run/page.html"


@contextmanager
def model_server(root: Path, token: str | None = None) -> Iterator[int]:
    """The real app under uvicorn on a free port (no lifespan: no model is needed here)."""
    params = parse_params({"validate": {"labels": ["a", "b"]}})
    app = create_app(params, Layout.from_params(params, root), api_token=token)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.01)
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()


def _site(root: Path) -> None:
    params = parse_params({"validate": {"labels": ["a", "b"]}})
    page = routes_docs.site_dir(Layout.from_params(params, root)) / PAGE
    page.parent.mkdir(parents=True)
    page.write_text("<h1>validation</h1>")


def test_only_a_server_with_this_page_counts(tmp_path: Path) -> None:
    _site(tmp_path / "ours")
    with model_server(tmp_path / "ours") as port:
        assert _served(routes_docs.url("127.0.0.1", port, PAGE))
    # A server of another project on the same kind of port: it answers, but not the page.
    with model_server(tmp_path / "theirs") as port:
        assert not _served(routes_docs.url("127.0.0.1", port, PAGE))
    assert not _served(routes_docs.url("127.0.0.1", port, PAGE))  # nothing listens now


def test_the_token_is_sent_when_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _site(tmp_path)
    with model_server(tmp_path, token="t0ken") as port:
        url = routes_docs.url("127.0.0.1", port, PAGE)
        monkeypatch.delenv("FLYWHEEL_API_TOKEN", raising=False)
        assert not _served(url)
        monkeypatch.setenv("FLYWHEEL_API_TOKEN", "t0ken")
        assert _served(url)
