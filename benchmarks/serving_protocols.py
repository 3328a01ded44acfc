"""Serving protocols side by side: the HTTP floor, Flywheel ``/v1`` and ``/v2`` (Open
Inference Protocol), and BentoML (default and one tuned setting), on the same ONNX file.

For the default model (the 8x8 digits ConvNet, random weights: speed does not depend on
them) and MiniLM sentiment (the packaged encoder and an untrained head; once with one text,
once as ``sentiment-mixed``, each client sending one of four texts of 3 to 64 tokens), one
run:

* **floor**: a POST route on the very Flywheel app (same uvicorn, FastAPI and middleware)
  that reads the body and answers a constant: what a request costs with no model;
* **flywheel v1 / v2**: ``flywheel serve``'s own routes, one pixel image or one text per
  request (v2: a ``UINT8`` tensor or a ``BYTES`` string, JSON);
* **bentoml default / tuned**: BentoML 1.4 in its own virtual environment
  (``benchmarks/.venvs/bentoml`` from ``peers/bentoml-requirements.txt``, made on demand,
  never a project dependency) serving ``peers/bentoml_service.py``: ONNX Runtime behind its
  adaptive batching with its defaults, and tuned with ``workers=2`` (one per core).

The closed-loop raw-asyncio client of :mod:`benchmarks.serving_bench` sends a fixed number
of requests per concurrency level (1, 8, 32, 128) after a warm-up, servers interleaved per
level. Then one Flywheel server runs under cProfile for a stretch of c=1 requests, to say
where a request's time goes (:mod:`benchmarks.serving_profile`). Results:
``benchmarks/results/serving_protocols.json``; the report section: :mod:`benchmarks.report`.

    python -m benchmarks.serving_protocols [--quick] [--venv PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import HERE, benchmark_card, write_result
from benchmarks.optimum_env import ensure_venv
from benchmarks.protocols_report import summary, targets
from benchmarks.serving_load import measure
from benchmarks.serving_profile import add_profile_routes
from benchmarks.serving_servers import build_workspace, free_port, stop_server, wait_ready

REQUIREMENTS = HERE / "peers" / "bentoml-requirements.txt"
VENV = HERE / ".venvs" / "bentoml"
LEVELS = (1, 8, 32, 128)
FLOOR = "/floor"
TEXT = "the service was quick and the staff were friendly, a good day"
# sentiment-mixed: each client sends one of these (3 to about 60 tokens), as real traffic
# mixes short and long texts; every server pads a batch to its longest.
MIXED_TEXTS = (
    "great, thanks",
    TEXT,
    "the room was clean but small, breakfast was cold and the staff did not seem to care much",
    " ".join([TEXT] * 4),
)
SENTIMENT_LABELS = ("negative", "positive")
MAX_LEN = 64
# BentoML arms: name -> environment (the tuned one: a worker per core).
BENTO_ARMS = {"bentoml default": {}, "bentoml workers=2": {"BENTO_WORKERS": "2"}}


def build_sentiment(root: Path) -> dict[str, str]:
    """A registry with MiniLM sentiment in production; the BentoML peer's settings."""
    import yaml

    from flywheel.core.config import parse_params
    from flywheel.families import get_family
    from flywheel.families.sentiment.package import model_dir, model_record
    from flywheel.families.sentiment.spec import SentimentSpec
    from flywheel.families.sentiment.tokenizer import TOKENIZER_FILE, current_ref
    from flywheel.nn.onnx_export import export_onnx
    from flywheel.release.registry import Registry

    raw = {
        "task": "sentiment",
        "validate": {"labels": list(SENTIMENT_LABELS)},
        "transformer": {"max_len": MAX_LEN},
        "paths": {"registry": str(root / "registry"), "artifacts": str(root / "artifacts")},
        "data": {"path": str(root / "data"), "feedback_inbox": str(root / "feedback")},
    }
    params = parse_params(raw)
    family = get_family("sentiment")
    spec = SentimentSpec(SENTIMENT_LABELS, current_ref(MAX_LEN), model_record())
    spec.save(root / "spec.json")
    net = family.build_network(params, spec)
    model = export_onnx(
        net,
        family.example_input(spec, 1),
        root / "model.onnx",
        dynamic_axes=family.dynamic_input_axes,
    )
    card = benchmark_card("sentiment", SENTIMENT_LABELS)
    registry = Registry(root / "registry")
    registry.promote(registry.register(model, root / "spec.json", card).version)
    (root / "params.yaml").write_text(yaml.safe_dump(raw))
    return {
        "PEER_KIND": "text",
        "PEER_MODEL": str(model),
        "PEER_LABELS": ",".join(SENTIMENT_LABELS),
        "PEER_TOKENIZER": str(model_dir() / TOKENIZER_FILE),
        "PEER_MAX_LEN": str(MAX_LEN),
        "PEER_PAD_ID": str(spec.tokenizer.pad_id),
    }


def build_default(root: Path) -> dict[str, str]:
    build_workspace(root)
    spec = json.loads((root / "preprocessing.json").read_text())
    return {
        "PEER_KIND": "image",
        "PEER_MODEL": str(root / "model.onnx"),
        "PEER_LABELS": ",".join(spec["labels"]),
        "PEER_MEAN": str(spec["mean"][0]),
        "PEER_STD": str(spec["std"][0]),
    }


def http_request(path: str, payload: Any) -> bytes:
    body = json.dumps(payload).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def requests_for(model: str) -> dict[str, Any]:
    """The one-instance request each server gets, all standing for the same input (a list
    of them for sentiment-mixed: client ``i`` sends the ``i``-th, round robin)."""
    if model == "sentiment-mixed":
        each = [_requests_for_text(text) for text in MIXED_TEXTS]
        return {name: [r[name] for r in each] for name in each[0]}
    if model == "default":
        pixels = np.random.default_rng(0).integers(0, 256, (1, 8, 8)).tolist()
        v1 = {"instances": [pixels]}
        tensor = {
            "name": "image",
            "datatype": "UINT8",
            "shape": [1, 1, 8, 8],
            "data": np.ravel(pixels).tolist(),
        }
        task, bento = "image_classification", ("/pixels", {"x": [pixels]})
    else:
        return _requests_for_text(TEXT)
    return _requests(task, v1, tensor, bento)


def _requests_for_text(text: str) -> dict[str, bytes]:
    v1 = {"instances": [text]}
    tensor = {"name": "text", "datatype": "BYTES", "shape": [1], "data": [text]}
    return _requests("sentiment", v1, tensor, ("/texts", {"texts": [text]}))


def _requests(
    task: str, v1: dict[str, Any], tensor: dict[str, Any], bento: tuple[str, Any]
) -> dict[str, bytes]:
    v2 = http_request(f"/v2/models/{task}/infer", {"id": "bench", "inputs": [tensor]})
    common = {"floor": http_request(FLOOR, v1), "flywheel v1": http_request("/v1/predict", v1)}
    peer = http_request(*bento)
    return {**common, "flywheel v2": v2, **{arm: peer for arm in BENTO_ARMS}}


def start_flywheel(root: Path, port: int, profile: Path | None = None) -> subprocess.Popen[bytes]:
    extra = ["--profile", str(profile)] if profile else []
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.serving_protocols",
        "--serve",
        str(root),
        "--port",
        str(port),
        *extra,
    ]
    log = (root / f"flywheel-{port}.log").open("wb")
    return subprocess.Popen(cmd, cwd=HERE.parent, stdout=log, stderr=subprocess.STDOUT)


def start_bento(
    python: Path, root: Path, port: int, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    full = {
        **os.environ,
        **env,
        "BENTOML_DO_NOT_TRACK": "true",
        "BENTOML_HOME": str(root / "bentoml-home"),
    }
    cmd = [
        str(python.parent / "bentoml"),
        "serve",
        "bentoml_service:Peer",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    log = (root / f"bentoml-{port}.log").open("wb")
    return subprocess.Popen(cmd, cwd=HERE / "peers", env=full, stdout=log, stderr=subprocess.STDOUT)


def run_model(model: str, python: Path, counts: tuple[int, int, float]) -> dict[str, Any]:
    total, warmup, budget = counts
    with tempfile.TemporaryDirectory(prefix=f"flywheel-protocols-{model}-") as tmp:
        root = Path(tmp)
        peer_env = build_default(root) if model == "default" else build_sentiment(root)
        port = free_port()
        procs = {"flywheel": (start_flywheel(root, port), port)}
        for arm, env in BENTO_ARMS.items():
            p = free_port()
            procs[arm] = (start_bento(python, root, p, {**peer_env, **env}), p)
        try:
            for proc, p in procs.values():
                wait_ready(p, proc)
            requests = requests_for(model)
            ports = {name: procs.get(name, procs["flywheel"])[1] for name in requests}
            servers: dict[str, dict[str, Any]] = {name: {} for name in requests}
            for c in LEVELS:  # interleaved per level: drift on a shared machine hits all alike
                for name, request in requests.items():
                    servers[name][str(c)] = measure(ports[name], request, c, total, warmup, budget)
                    print(f"{model} {name} c={c}: {servers[name][str(c)]}", flush=True)
        finally:
            for proc, _ in procs.values():
                stop_server(proc)
    return {"servers": servers, "summary": summary(servers)}


def serve(root: Path, port: int, profile: Path | None = None) -> None:
    """The Flywheel server plus the floor route, run as ``flywheel serve`` runs it."""
    import gc

    import uvicorn
    from fastapi import Request
    from fastapi.responses import JSONResponse

    from flywheel.core.config import load_params
    from flywheel.serving.app import create_app_for_root

    app = create_app_for_root(load_params(root / "params.yaml"), root)
    constant = {"predictions": [{"label": "0"}], "model_version": "floor"}

    async def floor(request: Request) -> JSONResponse:
        await request.body()
        return JSONResponse(constant)

    # A plain Starlette route: the same middleware, no FastAPI parameter handling.
    app.add_route(FLOOR, floor, methods=["POST"])
    if profile is not None:
        add_profile_routes(app, profile)
    gc.collect()
    gc.freeze()
    uvicorn.run(app, host="127.0.0.1", port=port, access_log=False, log_level="warning")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests per level")
    parser.add_argument("--venv", type=Path, default=VENV, help="BentoML's environment")
    parser.add_argument("--models", default="default,sentiment,sentiment-mixed")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--profile", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.port, args.profile)
        return
    started = time.perf_counter()
    python, env = ensure_venv(args.venv.resolve(), REQUIREMENTS, managed=VENV)
    counts = {
        "default": (300, 50, 20.0) if args.quick else (2000, 200, 45.0),
        "sentiment": (100, 20, 20.0) if args.quick else (300, 30, 40.0),
    }
    counts["sentiment-mixed"] = counts["sentiment"]
    models = {
        m: {"counts": counts[m], **run_model(m, python, counts[m])} for m in args.models.split(",")
    }
    from benchmarks.serving_profile import profile_one_request

    profile = profile_one_request(start_flywheel, build_default, requests_for)
    body = {
        "quick": args.quick,
        "levels": LEVELS,
        "bentoml_venv": env,
        "models": models,
        "targets": targets(models),
        "profile": profile,
    }
    path = write_result("serving_protocols", body, started)
    print(json.dumps(body["targets"], indent=1))
    print(f"written {path.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
