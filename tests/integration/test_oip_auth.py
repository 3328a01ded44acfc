"""Bearer auth on the Open Inference Protocol routes of a real `flywheel serve`: the two
health probes stay public (orchestrators probe them without credentials, like /healthz),
everything else needs the token, and a refusal is the JSON error OIP clients read."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from tests.faults.hostile_server import ServerProcess, build_project

from flywheel.serving.auth import TOKEN_ENV

pytestmark = [pytest.mark.slow]

TOKEN = "s3cret-token"
TEXT = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": ["a good day"]}]}


def test_v2_needs_the_token_but_its_probes_do_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = build_project(tmp_path / "project", "text_classification", {})
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    auth = {"authorization": f"Bearer {TOKEN}"}
    with ServerProcess(root) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        assert http.get("/v2/health/live").json() == {"live": True}
        assert http.get("/v2/health/ready").json() == {"ready": True}
        for method, path in (
            ("GET", "/v2"),
            ("GET", "/v2/models/text_classification"),
            ("GET", "/v2/models/text_classification/ready"),
            ("POST", "/v2/models/text_classification/infer"),
            ("GET", "/openapi.json"),
        ):
            refused = http.request(method, path, json=TEXT if method == "POST" else None)
            assert refused.status_code == 401 and refused.json()["error"], path
        answer = http.post("/v2/models/text_classification/infer", json=TEXT, headers=auth)
        assert answer.status_code == 200, answer.text
        assert answer.json()["outputs"][0]["name"] == "label"
