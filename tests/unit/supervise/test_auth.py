"""The bind rules of `flywheel up` and the Prefect credentials its children get."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from flywheel.core.errors import ConfigError
from flywheel.supervise.auth import (
    CLIENT_AUTH_ENV,
    SERVER_AUTH_ENV,
    auth_string,
    authorization,
    check_prefect_bind,
)
from flywheel.supervise.prefect_server import prefect_env, server_env

PROJECT = Path(__file__).resolve().parents[3]


def test_a_public_prefect_bind_needs_an_auth_string() -> None:
    for host in ("0.0.0.0", "::", "192.0.2.7", "myhost.example"):
        with pytest.raises(ConfigError, match=SERVER_AUTH_ENV):
            check_prefect_bind(host, None)
        check_prefect_bind(host, "admin:s3cret")
    for host in ("127.0.0.1", "::1", "localhost"):
        check_prefect_bind(host, None)


def test_the_auth_string_reaches_the_server_and_every_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(CLIENT_AUTH_ENV, raising=False)
    monkeypatch.setenv(SERVER_AUTH_ENV, "admin:s3cret")
    assert server_env(tmp_path, "0.0.0.0", 4200)[SERVER_AUTH_ENV] == "admin:s3cret"
    assert prefect_env(tmp_path, "http://127.0.0.1:4200/api")[CLIENT_AUTH_ENV] == "admin:s3cret"
    # Set only as the client setting, it still locks a server this `up` starts.
    monkeypatch.delenv(SERVER_AUTH_ENV)
    monkeypatch.setenv(CLIENT_AUTH_ENV, "u:p")
    assert server_env(tmp_path, "0.0.0.0", 4200)[SERVER_AUTH_ENV] == "u:p"
    assert auth_string({}) is None and authorization(None) == {}
    header = authorization("admin:s3cret")["Authorization"]
    assert base64.b64decode(header.removeprefix("Basic ")) == b"admin:s3cret"


def _project(root: Path, serve_host: str = "127.0.0.1") -> Path:
    root.mkdir()
    shutil.copy(PROJECT / "dvc.yaml", root / "dvc.yaml")
    raw = yaml.safe_load((PROJECT / "params.yaml").read_text())
    raw.setdefault("serve", {})["host"] = serve_host
    (root / "params.yaml").write_text(yaml.safe_dump(raw))
    return root


def _up(project: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in (SERVER_AUTH_ENV, CLIENT_AUTH_ENV, "PREFECT_API_URL", "FLYWHEEL_API_TOKEN")
    }
    return subprocess.run(
        [sys.executable, "-m", "flywheel.cli", "up", *args],
        cwd=project,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("detach", [False, True])
def test_up_on_a_public_address_without_auth_is_one_line_and_starts_nothing(
    tmp_path: Path, detach: bool
) -> None:
    project = _project(tmp_path / "project")
    out = _up(project, "--host", "0.0.0.0", "--port", "0", *(["--detach"] if detach else []))
    assert out.returncode == 2, out.stdout + out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and SERVER_AUTH_ENV in lines[0], out.stderr
    assert "Traceback" not in out.stderr
    assert not (project / ".flywheel" / "service" / "up.json").exists()


def test_up_refuses_a_public_model_server_without_its_token(tmp_path: Path) -> None:
    project = _project(tmp_path / "project", serve_host="0.0.0.0")
    out = _up(project, "--port", "0")
    assert out.returncode == 2, out.stdout + out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "FLYWHEEL_API_TOKEN" in lines[0], out.stderr
