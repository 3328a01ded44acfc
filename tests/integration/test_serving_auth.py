"""The model server's access rules: loopback binds only without a token, and a token
guards everything but the probes (real HTTP)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.integration.serving_helpers import (
    make_params,
    serving,
)

from flywheel.core.errors import ConfigError
from flywheel.serving.auth import TOKEN_ENV, is_loopback
from flywheel.serving.server import run_server

# --- security --------------------------------------------------------------------------


def test_loopback_rule() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.1.2.3") and not is_loopback("host")


def test_non_loopback_bind_without_token_refuses(
    tmp_path: Path, raw_params: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    params = make_params(raw_params, tmp_path)
    with pytest.raises(ConfigError, match=TOKEN_ENV):
        run_server(params, tmp_path, host="0.0.0.0", port=0)


@pytest.mark.slow
def test_token_required_except_on_probes(workspace: Any) -> None:
    params, layout, _ = workspace
    body = {"instances": [[[0] * 8] * 8]}
    with serving(params, layout, token="s3cret-token") as (_, client):
        assert client.post("/v1/predict", json=body).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert client.post("/v1/predict", json=body, headers=wrong).status_code == 401
        assert client.get("/metrics").status_code == 401
        assert client.get("/v1/model").status_code == 401
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 200
        good = {"Authorization": "Bearer s3cret-token"}
        assert client.post("/v1/predict", json=body, headers=good).status_code == 200
        assert client.get("/metrics", headers=good).status_code == 200
