"""``/data-docs``: the workspace's Data Docs, read-only, inside the site folder only, behind
the server's bearer token; the site may appear after the server started."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from flywheel.core.config import parse_params
from flywheel.core.layout import Layout
from flywheel.serving import routes_docs
from flywheel.serving.app import create_app


def _app(tmp_path: Path, token: str | None = None) -> tuple[TestClient, Path]:
    params = parse_params({"validate": {"labels": ["a", "b"]}})
    layout = Layout.from_params(params, tmp_path)
    # Not a context manager: no lifespan, so no model is needed to answer these routes.
    return TestClient(create_app(params, layout, api_token=token)), routes_docs.site_dir(layout)


def _site(site: Path) -> None:
    (site / "validations" / "s").mkdir(parents=True)
    (site / "index.html").write_text("<h1>index</h1>")
    (site / "validations" / "s" / "page.html").write_text("<h1>page</h1>")
    (site.parent / "secret.txt").write_text("not for the web")


def test_pages_are_served_once_they_exist(tmp_path: Path) -> None:
    client, site = _app(tmp_path)
    assert client.get("/data-docs/index.html").status_code == 404  # no validation yet
    _site(site)
    assert client.get("/data-docs/").text == "<h1>index</h1>"
    page = client.get("/data-docs/validations/s/page.html")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize(
    "path",
    [
        "/data-docs/../secret.txt",
        "/data-docs/%2e%2e/secret.txt",
        "/data-docs/validations/..%2f..%2fsecret.txt",
        "/data-docs//etc/passwd",
    ],
)
def test_nothing_outside_the_site_is_reachable(tmp_path: Path, path: str) -> None:
    client, site = _app(tmp_path)
    _site(site)
    answer = client.get(path)
    assert answer.status_code == 404 and "not for the web" not in answer.text


def test_a_link_out_of_the_site_is_not_followed(tmp_path: Path) -> None:
    client, site = _app(tmp_path)
    _site(site)
    (site / "leak.txt").symlink_to(site.parent / "secret.txt")
    assert client.get("/data-docs/leak.txt").status_code == 404


def test_read_only(tmp_path: Path) -> None:
    client, site = _app(tmp_path)
    _site(site)
    assert client.post("/data-docs/index.html", content=b"x").status_code == 405
    assert client.delete("/data-docs/index.html").status_code == 405
    assert (site / "index.html").read_text() == "<h1>index</h1>"


def test_behind_the_bearer_token(tmp_path: Path) -> None:
    client, site = _app(tmp_path, token="s3cret")
    _site(site)
    assert client.get("/data-docs/index.html").status_code == 401
    ok = client.get("/data-docs/index.html", headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200


def test_link_addresses() -> None:
    assert routes_docs.url("127.0.0.1", 8008) == "http://127.0.0.1:8008/data-docs/index.html"
    assert routes_docs.url("0.0.0.0", 9000, "validations/s/p.html") == (
        "http://127.0.0.1:9000/data-docs/validations/s/p.html"
    )
    assert routes_docs.url("::1", 8008).startswith("http://[::1]:8008/")
