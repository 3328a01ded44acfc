"""Two serving replicas following the production alias on a real S3-compatible server
(moto on loopback): each is its own folder with an empty registry mirror, served over
real HTTP. They follow a promotion and a rollback, refuse a corrupted object by sha256
and keep serving, and say in /readyz and /metrics when the store does not answer. The
model's reference profile comes with it: the monitor on a replica compares against it."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from tests.integration.serving_helpers import (
    LiveServer,
    card_fields,
    make_params,
    metric_value,
    png_b64,
    random_images,
    wait_for,
)
from tests.moto_s3 import S3Server

from flywheel.core.layout import Layout
from flywheel.core.remote_section import RemoteConfig
from flywheel.core.workspace import Workspace
from flywheel.monitor.reference import load_reference, staged_reference
from flywheel.monitor.report import run_monitor
from flywheel.release.registry import open_registry
from flywheel.release.registry.remote import RemoteRegistry
from flywheel.remote.objects import ObjectStore
from flywheel.serving.app import create_app

pytestmark = [pytest.mark.slow]


@contextlib.contextmanager
def replicas(
    tmp_path: Path, raw_params: dict[str, Any], remote: RemoteConfig, n: int = 2
) -> Iterator[list[httpx.Client]]:
    with contextlib.ExitStack() as stack:
        clients = []
        for i in range(n):
            root = tmp_path / f"replica-{i}"
            root.mkdir(parents=True)
            params = replica_params(tmp_path, raw_params, remote, i)
            server = stack.enter_context(
                LiveServer(create_app(params, Layout.from_params(params, root)))
            )
            clients.append(stack.enter_context(httpx.Client(base_url=server.url, timeout=10)))
        yield clients


def replica_params(tmp_path: Path, raw_params: dict[str, Any], remote: RemoteConfig, i: int) -> Any:
    raw = {
        **raw_params,
        "remote": {**remote.model_dump(), "poll_interval_s": 0.1, "log_ship_interval_s": 0.2},
        "monitor": {**raw_params["monitor"], "min_window": 8},
    }
    return make_params(raw, tmp_path / f"replica-{i}")


def serving_version(client: httpx.Client) -> str | None:
    answer = client.get("/v1/model")
    return answer.json().get("version") if answer.status_code == 200 else None


def all_serve(clients: list[httpx.Client], version: str, timeout: float = 120.0) -> float:
    """Seconds until every replica serves ``version``."""
    start = time.perf_counter()
    wait_for(lambda: all(serving_version(c) == version for c in clients), timeout)
    return time.perf_counter() - start


def predict(client: httpx.Client) -> str:
    return str(predict_answer(client)["model_version"])


def predict_answer(client: httpx.Client, seed: int = 0) -> dict[str, Any]:
    images = [png_b64(random_images(1, seed=seed)[0])]
    answer = client.post("/v1/predict", json={"instances": images})
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def monitor_replica(
    tmp_path: Path, raw_params: dict[str, Any], remote: RemoteConfig, client: Any, version: str
) -> None:
    """The monitor on replica 0 finds the profile where its mirror put it and compares."""
    root = tmp_path / "replica-0"
    promoted = load_reference(tmp_path / "promoter" / "registry" / "versions" / version)
    assert promoted is not None and promoted["model_version"] == version
    assert load_reference(root / "registry" / "versions" / version) == promoted
    for _ in range(8):
        predict(client)
    ws = Workspace(
        root, root, root / "params.yaml", replica_params(tmp_path, raw_params, remote, 0)
    )
    wait_for(lambda: run_monitor(ws)["window"] >= 8)
    report = run_monitor(ws)
    assert report["model_version"] == version and report["verdict"] in ("drift", "no drift")
    assert report["features"], report


def test_replicas_follow_promotion_rollback_and_refuse_a_corrupt_object(
    tmp_path: Path,
    raw_params: dict[str, Any],
    remote: RemoteConfig,
    s3_server: S3Server,
    onnx_models: dict[str, Path],
) -> None:
    promoter = open_registry(tmp_path / "promoter" / "registry", remote)
    assert isinstance(promoter, RemoteRegistry)
    # The profile the deploy stages with the model (here on images a client might send).
    profiled = staged_reference(lambda: [png_b64(p) for p in random_images(40, seed=3)])
    models = onnx_models["a"], onnx_models["spec"]
    v1 = promoter.register(*models, card_fields(), extras=profiled).version
    promoter.promote(v1)
    with replicas(tmp_path, raw_params, remote) as clients:
        all_serve(clients, v1)
        assert [c.get("/readyz").json() for c in clients] == [
            {"ready": True, "remote": "reachable"}
        ] * 2
        monitor_replica(tmp_path, raw_params, remote, clients[0], v1)

        v2 = promoter.register(onnx_models["b"], onnx_models["spec"], card_fields()).version
        promoter.promote(v2)
        seconds = all_serve(clients, v2)
        print(f"promotion -> both replicas serving {v2}: {seconds:.2f}s")
        assert [predict(c) for c in clients] == [v2, v2]

        assert promoter.rollback().version == v1
        all_serve(clients, v1)

        # A corrupted object on the store: refused by sha256, the replicas keep serving v1.
        v3 = promoter.register(onnx_models["b"], onnx_models["spec"], card_fields("int8")).version
        store = ObjectStore(remote)
        boto3.client("s3", endpoint_url=remote.endpoint_url).put_object(
            Bucket=store.bucket, Key=store.key(f"registry/versions/{v3}/model.onnx"), Body=b"junk"
        )
        promoter.promote(v3)  # its own mirror verified before the object was damaged
        wait_for(
            lambda: all(
                metric_value(
                    c.get("/metrics").text,
                    "flywheel_remote_follow_errors_total",
                    reason="integrity",
                )
                >= 1
                for c in clients
            )
        )
        assert [predict(c) for c in clients] == [v1, v1]
        assert not (tmp_path / "replica-0" / "registry" / "versions" / v3).exists()

        # The store goes away: still serving, and saying the remote is unreachable.
        s3_server.stop()
        try:
            wait_for(
                lambda: all(c.get("/readyz").json().get("remote") == "unreachable" for c in clients)
            )
            assert [c.get("/readyz").status_code for c in clients] == [200, 200]
            assert [predict(c) for c in clients] == [v1, v1]
            text = clients[0].get("/metrics").text
            assert metric_value(text, "flywheel_remote_reachable") == 0.0
        finally:
            s3_server.start()
        wait_for(lambda: all(c.get("/readyz").json().get("remote") == "reachable" for c in clients))


def test_the_monitor_anywhere_reads_every_replicas_log(
    tmp_path: Path,
    raw_params: dict[str, Any],
    remote: RemoteConfig,
    onnx_models: dict[str, Path],
) -> None:
    """Predictions answered by two replicas reach the team remote; the monitor on a third
    machine (nothing served there) sees them all, and feedback naming a prediction that
    replica 0 answered is taken by replica 1."""
    promoter = open_registry(tmp_path / "promoter" / "registry", remote)
    profiled = staged_reference(lambda: [png_b64(p) for p in random_images(40, seed=3)])
    version = promoter.register(
        onnx_models["a"], onnx_models["spec"], card_fields(), extras=profiled
    ).version
    promoter.promote(version)
    elsewhere = tmp_path / "monitor-machine"
    elsewhere.mkdir()
    ws = Workspace(
        elsewhere,
        elsewhere,
        elsewhere / "params.yaml",
        replica_params(tmp_path, raw_params, remote, 9),
    )
    with replicas(tmp_path, raw_params, remote) as clients:
        all_serve(clients, version)
        answers = [predict_answer(clients[i % 2], seed=i)["predictions"][0] for i in range(10)]
        wait_for(lambda: run_monitor(ws)["window"] == 10)
        feedback = clients[1].post(
            "/v1/feedback", json={"prediction_id": answers[0]["prediction_id"], "label": "0"}
        )
        assert feedback.status_code == 201, feedback.text
        shipped = [
            metric_value(c.get("/metrics").text, "flywheel_prediction_log_shipped_bytes_total")
            for c in clients
        ]
    report = run_monitor(ws)
    assert report["model_version"] == version and report["features"], report
    assert not (elsewhere / ".flywheel" / "predictions").exists()  # all from the remote
    assert all(b > 0 for b in shipped), shipped
