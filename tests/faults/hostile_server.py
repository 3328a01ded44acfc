"""The target of the hostile-input tests: a real `flywheel serve` process per family (a tiny
real ONNX graph behind the family's real preprocessing spec), a health probe in its own
process and a memory sampler watching it."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil
import yaml
from onnx import TensorProto
from tests.served_models import stub_card_fields, stub_model

from flywheel.core.config import parse_params
from flywheel.release.registry import Registry
from flywheel.supervise.ports import free_port
from flywheel.supervise.supervisor import terminate_group

PROJECT = Path(__file__).resolve().parents[2]
LABELS = ("neg", "pos")


# --- models ----------------------------------------------------------------------------


def _spec(task: str, path: Path) -> tuple[int, int, dict[str, Any]]:
    """The family's real spec at ``path``; the model's input type and rank; params."""
    if task == "image_classification":
        from flywheel.families.image.pixels import PreprocessingSpec

        PreprocessingSpec(8, "L", (0.5,), (0.25,), LABELS).save(path)
        # The model was validated on PNG and JPEG files: no other decoder may run.
        return TensorProto.FLOAT, 4, {"validate": {"allowed_formats": ["PNG", "JPEG"]}}
    if task == "text_classification":
        from flywheel.families.text.spec import TextSpec
        from flywheel.families.text.tokenizer import Tokenizer

        texts = ["a good day", "a bad day", "good news today", "bad news again"]
        TextSpec(LABELS, Tokenizer.fit(texts, max_len=32, vocab_size=50, min_freq=1)).save(path)
        return TensorProto.INT64, 2, {}
    if task == "sentiment":
        from flywheel.families.sentiment.package import model_record
        from flywheel.families.sentiment.spec import SentimentSpec
        from flywheel.families.sentiment.tokenizer import current_ref

        SentimentSpec(LABELS, current_ref(32), model_record()).save(path)
        return TensorProto.INT64, 2, {}
    from flywheel.families.tabular.preprocessing import fit_spec

    records = [
        {
            "size": 10.0 + i,
            "rooms": float(i % 4),
            "kind": "flat" if i % 2 else "house",
            "city": ["north", "south", None][i % 3],
        }
        for i in range(12)
    ]
    targets = np.arange(12, dtype=np.float64)
    fit_spec(records, targets, ["size", "rooms"], ["kind", "city"], ["city"], "price").save(path)
    data = {
        "numeric_columns": ["size", "rooms"],
        "categorical_columns": ["kind", "city"],
        "target": "price",
        "kind": "table",
    }
    return TensorProto.FLOAT, 2, {"data": data}


def build_project(root: Path, task: str, serve: dict[str, Any]) -> Path:
    """A project folder `flywheel serve` runs in, its registry holding v0001 in production
    and v0002 (other weights) registered but not promoted."""
    root.mkdir(parents=True)
    shutil.copy(PROJECT / "dvc.yaml", root / "dvc.yaml")
    regression = task == "tabular_regression"
    input_type, rank, extra = _spec(task, root / "spec.json")
    raw: dict[str, Any] = {
        "task": task,
        **extra,
        "validate": {**extra.get("validate", {}), "labels": [] if regression else list(LABELS)},
        "serve": {"poll_interval_s": 0.1, **serve},
    }
    raw["data"] = {**raw.get("data", {}), "feedback_inbox": "feedback"}
    params = parse_params(raw)
    (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    registry = Registry(root / "registry")
    fields = stub_card_fields(task, () if regression else LABELS, params.as_dict())
    for weight in (0.01, 0.02):
        model = stub_model(
            root / f"model-{weight}.onnx", input_type, rank, 1 if regression else 2, weight
        )
        registry.register(model, root / "spec.json", fields)
    registry.promote("v0001")
    return root


# --- processes -------------------------------------------------------------------------


class ServerProcess:
    """`flywheel serve` in its own process group, on a free loopback port."""

    def __init__(self, project: Path) -> None:
        self.project = project
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = project / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> ServerProcess:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "flywheel.cli", "serve", "--port", str(self.port)],
                cwd=self.project,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 120
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server not ready: {self.log.read_text()[-3000:]}")
            time.sleep(0.1)

    def __exit__(self, *_: object) -> None:
        if self.proc is not None:
            terminate_group(self.proc.pid, 15.0, self.proc)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


_PROBE = """
import json, os, sys, time
import httpx
url, out, stop = sys.argv[1:4]
latencies, failures = [], []
with httpx.Client(timeout=30) as client:
    client.get(url)
    open(out + ".ready", "w").close()
    while not os.path.exists(stop):
        start = time.perf_counter()
        try:
            r = client.get(url)
            if r.status_code != 200 or r.json() != {"status": "ok"}:
                failures.append(f"{r.status_code} {r.text[:100]}")
        except httpx.HTTPError as err:
            failures.append(repr(err))
        latencies.append((time.time(), time.perf_counter() - start))
        time.sleep(0.01)
with open(out, "w") as fh:
    json.dump({"latencies": latencies, "failures": failures}, fh)
"""


@dataclass
class Watch:
    """What the attack did to the server: health-probe answers and memory."""

    latencies: list[float] = field(default_factory=list)
    idle_latencies: list[float] = field(default_factory=list)
    probe_failures: list[str] = field(default_factory=list)
    rss_start: int = 0
    rss_peak: int = 0

    def figures(self) -> dict[str, float]:
        lat = np.asarray(self.latencies) * 1000
        idle = np.asarray(self.idle_latencies or [0.0]) * 1000
        return {
            "idle_probe_p50_ms": round(float(np.percentile(idle, 50)), 1),
            "idle_probe_p99_ms": round(float(np.percentile(idle, 99)), 1),
            "probes": len(lat),
            "probe_p50_ms": round(float(np.percentile(lat, 50)), 1),
            "probe_p99_ms": round(float(np.percentile(lat, 99)), 1),
            "probe_max_ms": round(float(lat.max()), 1),
            "rss_start_mib": round(self.rss_start / 2**20, 1),
            "rss_growth_mib": round((self.rss_peak - self.rss_start) / 2**20, 1),
        }


@contextlib.contextmanager
def watching(server: ServerProcess, workdir: Path) -> Iterator[Watch]:
    """Probe ``/healthz`` from another process every 10 ms and sample the server's RSS
    every 20 ms while the block runs; the probe's first second, before the block, is the
    idle baseline."""
    watch = Watch()
    process = psutil.Process(server.pid)
    watch.rss_start = watch.rss_peak = process.memory_info().rss
    out, stop_file = workdir / "probe.json", workdir / "probe.stop"
    for stale in (out, stop_file, Path(f"{out}.ready")):
        stale.unlink(missing_ok=True)
    probe = subprocess.Popen(
        [sys.executable, "-c", _PROBE, f"{server.url}/healthz", str(out), str(stop_file)]
    )
    deadline = time.monotonic() + 60
    while not Path(f"{out}.ready").exists():
        assert probe.poll() is None and time.monotonic() < deadline, "the probe did not start"
        time.sleep(0.05)
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            with contextlib.suppress(psutil.Error):
                watch.rss_peak = max(watch.rss_peak, process.memory_info().rss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    time.sleep(1.0)
    started = time.time()
    try:
        yield watch
    finally:
        done.set()
        sampler.join()
        stop_file.touch()
        probe.wait(timeout=60)
        result = json.loads(out.read_text())
        watch.probe_failures = result["failures"]
        watch.idle_latencies = [dt for t, dt in result["latencies"] if t < started]
        watch.latencies = [dt for t, dt in result["latencies"] if t >= started]
