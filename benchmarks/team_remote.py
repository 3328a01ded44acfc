"""Team mode on S3-compatible storage (moto on loopback): the figures of issue 13.

    run cache   machine A's cold run of the real flow vs machine B (a fresh clone with no
                data and an empty DVC cache) reproducing the same data version from what
                A pushed; objects and bytes each run left on the store (dvc/, registry/)
    follow      seconds from a promotion (or rollback) on a third machine to both of two
                serving replicas (real HTTP servers) answering with that version
    race        rounds of two promoters racing on the alias: winners per round

    python -m benchmarks.team_remote [--follow-rounds 6] [--race-rounds 20] [--skip-pipeline]

The pipeline uses the integration tests' tiny settings (digits, a few epochs). Writes
``benchmarks/results/team_remote.json`` and prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.common import write_result

HERE = Path(__file__).resolve().parent


def _bytes_on_store(remote: Any) -> dict[str, dict[str, int]]:
    import boto3

    client = boto3.client("s3", endpoint_url=remote.endpoint_url)
    out: dict[str, dict[str, int]] = {}
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=remote.bucket)
    for page in pages:
        for obj in page.get("Contents", []):
            area = obj["Key"].split("/")[1]  # <prefix>/<area>/...
            entry = out.setdefault(area, {"objects": 0, "bytes": 0})
            entry["objects"] += 1
            entry["bytes"] += int(obj["Size"])
    return out


def run_cache(tmp: Path, remote: Any) -> dict[str, Any]:
    from prefect.testing.utilities import prefect_test_harness
    from tests.integration.remote_helpers import origin_and_clone, run_flow

    a, b = origin_and_clone(tmp, remote)
    with prefect_test_harness(server_startup_timeout=180):
        start = time.perf_counter()
        first = run_flow(a)
        a_s = time.perf_counter() - start
        after_a = _bytes_on_store(remote)
        start = time.perf_counter()
        second = run_flow(b, data_hash=first["data_hash"])
        b_s = time.perf_counter() - start
        after_b = _bytes_on_store(remote)
    return {
        "a_cold_s": round(a_s, 1),
        "b_from_run_cache_s": round(b_s, 1),
        "b_over_a": round(b_s / a_s, 3),
        "a_deploy": first["deploy"]["status"],
        "a_stage_s": {k: v["seconds"] for k, v in first["stages"].items()},
        "b_stages": {
            k: f"{'restored' if v['restored'] else 'ran'} {v['seconds']}s"
            for k, v in second["stages"].items()
        },
        "store_after_a": after_a,
        "store_after_b": after_b,
    }


def follow(tmp: Path, remote: Any, rounds: int) -> dict[str, Any]:
    from tests.integration.serving_helpers import card_fields
    from tests.integration.test_remote_replicas import all_serve, replicas

    from flywheel.release.registry import open_registry

    models = _models(tmp / "onnx")
    raw = _raw_params()
    promoter = open_registry(tmp / "promoter" / "registry", remote)
    v1 = promoter.register(models["a"], models["spec"], card_fields()).version
    v2 = promoter.register(models["b"], models["spec"], card_fields()).version
    promoter.promote(v1)
    seconds = []
    with replicas(tmp / "replicas", raw, remote) as clients:
        all_serve(clients, v1, timeout=60)
        for i in range(rounds):
            # Promote v2, then roll back to v1 (which retires v2; promoting it again
            # brings it back, as a promotion by hand would).
            target = promoter.promote(v2).version if i % 2 == 0 else promoter.rollback().version
            seconds.append(all_serve(clients, target, timeout=60))
    return {
        "poll_interval_s": 0.1,
        "rounds": rounds,
        "median_s": round(statistics.median(seconds), 3),
        "max_s": round(max(seconds), 3),
        "all_s": [round(s, 3) for s in seconds],
    }


def race(tmp: Path, remote: Any, rounds: int) -> dict[str, Any]:
    from tests.unit.release.test_remote_registry import _deploy, _machine, _register

    a, b = _machine(tmp, "race-a", remote), _machine(tmp, "race-b", remote)
    winners = []
    for i in range(rounds):
        va, vb = _register(a, tmp, f"a{i}".encode()), _register(b, tmp, f"b{i}".encode())
        barrier, outcome = threading.Barrier(2), {}
        threads = [
            threading.Thread(target=_deploy, args=(a, va, barrier, outcome, "a")),
            threading.Thread(target=_deploy, args=(b, vb, barrier, outcome, "b")),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        winners.append(sum(1 for o in outcome.values() if o == "won"))
    return {"rounds": rounds, "rounds_with_exactly_one_winner": winners.count(1)}


def _models(out: Path) -> dict[str, Path]:
    import torch

    from flywheel.families.image.network import ConvNet
    from flywheel.families.image.pixels import PreprocessingSpec
    from flywheel.nn.onnx_export import export_onnx

    out.mkdir(parents=True)
    labels = tuple(str(i) for i in range(10))
    models = {}
    for name, seed in (("a", 1), ("b", 2)):
        torch.manual_seed(seed)
        models[name] = export_onnx(
            ConvNet(1, 8, 10, channels=(4, 8)), (1, 8, 8), out / f"{name}.onnx"
        )
    PreprocessingSpec(size=8, mode="L", mean=(0.3,), std=(0.25,), labels=labels).save(
        out / "preprocessing.json"
    )
    models["spec"] = out / "preprocessing.json"
    return models


def _raw_params() -> dict[str, Any]:
    from flywheel.core.config import load_params

    return load_params(HERE.parent / "params.yaml").as_dict()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--follow-rounds", type=int, default=6)
    parser.add_argument("--race-rounds", type=int, default=20)
    parser.add_argument("--skip-pipeline", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    from tests.moto_s3 import S3Server

    from flywheel.core.remote_section import RemoteConfig

    for key, value in {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    server = S3Server()
    server.start()
    body: dict[str, Any] = {}
    try:

        def fresh() -> RemoteConfig:
            return RemoteConfig(
                url=f"s3://{server.bucket()}/team", endpoint_url=server.endpoint, max_attempts=1
            )

        with tempfile.TemporaryDirectory() as tmp:
            body["race"] = race(Path(tmp), fresh(), args.race_rounds)
            body["follow"] = follow(Path(tmp), fresh(), args.follow_rounds)
            if not args.skip_pipeline:
                body["run_cache"] = run_cache(Path(tmp) / "pipeline", fresh())
    finally:
        server.stop()
    path = write_result("team_remote", body, started)
    print(f"results in {path}")
    _table(body)


def _table(body: dict[str, Any]) -> None:
    fl, rc = body["follow"], body["race"]
    print("| figure | value |\n|---|---|")
    print(
        f"| promotion -> both replicas serving, median / max s | {fl['median_s']} / {fl['max_s']} |"
    )
    print(
        f"| race rounds with one winner | {rc['rounds_with_exactly_one_winner']}/{rc['rounds']} |"
    )
    if "run_cache" in body:
        run = body["run_cache"]
        print(f"| A cold run s | {run['a_cold_s']} |")
        print(f"| B from run cache s | {run['b_from_run_cache_s']} (x{run['b_over_a']}) |")
        print(f"| B stages | {run['b_stages']} |")
        print(f"| store after A | {run['store_after_a']} |")
        print(f"| store after B | {run['store_after_b']} |")


if __name__ == "__main__":
    main()
