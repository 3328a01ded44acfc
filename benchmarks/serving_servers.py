"""The serving benchmark's model and servers: a registry holding a small exported ConvNet (the
same weights for the baseline), `flywheel serve` and the baseline started on free ports,
waited for and stopped."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import benchmark_card

LABELS = tuple(str(i) for i in range(10))
SIZE = 8


START_TIMEOUT_S = 60.0
BASELINE = Path(__file__).with_name("serving_baseline.py")


def build_workspace(root: Path, seed: int = 0) -> None:
    """Registry with the exported ConvNet in production, and the same weights for the baseline."""
    import torch
    import yaml

    from flywheel.families.image.network import ConvNet
    from flywheel.families.image.pixels import PreprocessingSpec
    from flywheel.nn.onnx_export import export_onnx
    from flywheel.release.registry import Registry

    torch.manual_seed(seed)
    net = ConvNet(1, SIZE, len(LABELS)).eval()
    torch.save(net.state_dict(), root / "weights.pt")
    spec = PreprocessingSpec(size=SIZE, mode="L", mean=(0.3,), std=(0.25,), labels=LABELS)
    spec.save(root / "preprocessing.json")
    onnx_path = export_onnx(net, spec.input_shape, root / "model.onnx")
    registry = Registry(root / "registry")
    card = benchmark_card("image_classification", LABELS)
    version = registry.register(onnx_path, root / "preprocessing.json", card).version
    registry.promote(version)
    params = {
        "task": "image_classification",
        "validate": {"labels": list(LABELS)},
        "paths": {"registry": str(root / "registry"), "artifacts": str(root / "artifacts")},
        "data": {"path": str(root / "data"), "feedback_inbox": str(root / "feedback")},
    }
    (root / "params.yaml").write_text(yaml.safe_dump(params))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(kind: str, root: Path, port: int) -> subprocess.Popen[bytes]:
    if kind == "flywheel":
        code = (
            "import sys; from pathlib import Path; from flywheel.core.config import load_params; "
            "from flywheel.serving.server import run_server; "
            "run_server(load_params(sys.argv[1]), Path(sys.argv[2]), '127.0.0.1', int(sys.argv[3]))"
        )
        cmd = [sys.executable, "-c", code, str(root / "params.yaml"), str(root), str(port)]
    else:
        cmd = [sys.executable, str(BASELINE), "--serve-baseline", str(root), "--port", str(port)]
    log = (root / f"{kind}.log").open("wb")
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)


def wait_ready(port: int, proc: subprocess.Popen[bytes]) -> None:
    import httpx

    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server on port {port} exited with {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server on port {port} not ready after {START_TIMEOUT_S:.0f}s")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
