"""Training on several processes or machines (``train.devices`` x ``train.num_nodes``).

The train stage launches ``torchrun`` as a child process and waits for it; every rank runs
the train stage itself (``python -m flywheel.stages.train ROOT``) with Lightning's DDP
strategy, and only global rank 0 writes the stage's outputs, so the
DVC stage and its outputs are the same as with one process.

Why a launcher subprocess and not Lightning's own ``strategy="ddp"`` in the stage's
process: Lightning starts the other ranks by re-executing the current command line, which
inside a Prefect flow run is the flow engine itself, so the whole run would execute twice.
``ddp_spawn`` would work in-process but pickles the module and re-imports torch in every
rank. torchrun keeps the ranks separate processes with the TorchElastic environment, which
Lightning detects and joins without launching anything.

Gloo on CPU (over loopback on one machine), NCCL on GPUs: Lightning's DDP default for the
accelerator. Several machines: the pipeline runs on the first machine (node 0), and every
other machine runs ``flywheel stage train`` in its checkout (same data version, its
preprocess outputs in place) with ``FLYWHEEL_DDP_NODE_RANK=1 .. num_nodes-1``; all with
the same ``FLYWHEEL_DDP_ENDPOINT=HOST:PORT`` (the first machine's address). Node ranks are
fixed (torchrun's static rendezvous), not c10d's order of arrival: global rank 0, which
writes the stage's outputs, must be on the machine whose pipeline records them.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from flywheel.core.errors import ConfigError
from flywheel.core.sections import TrainConfig

ENDPOINT_ENV = "FLYWHEEL_DDP_ENDPOINT"
NODE_RANK_ENV = "FLYWHEEL_DDP_NODE_RANK"


def world_size(cfg: TrainConfig) -> int:
    return cfg.devices * cfg.num_nodes


def wanted(cfg: TrainConfig) -> bool:
    return cfg.strategy == "ddp" or world_size(cfg) > 1


def inside_launcher() -> bool:
    """True in a rank torchrun started (TorchElastic sets these for every rank)."""
    return "TORCHELASTIC_RUN_ID" in os.environ and "LOCAL_RANK" in os.environ


def global_rank() -> int:
    return int(os.environ.get("RANK", "0"))


def per_device_batch(cfg: TrainConfig) -> int:
    """Each rank's batch: ``train.batch_size`` is the global one, so the optimiser takes
    the same steps on the same number of samples as one process would."""
    world = world_size(cfg) if inside_launcher() else 1
    if cfg.batch_size % world:
        raise ConfigError(
            f"train.batch_size {cfg.batch_size} does not split over {world} processes"
            f" (train.devices x train.num_nodes): make it a multiple of {world}"
        )
    return cfg.batch_size // world


def _endpoint(cfg: TrainConfig) -> str:
    given = os.environ.get(ENDPOINT_ENV)
    if given:
        return given
    if cfg.num_nodes > 1:
        raise ConfigError(
            f"train.num_nodes is {cfg.num_nodes}: set {ENDPOINT_ENV}=HOST:PORT (the first"
            " machine's address) on every machine running the stage"
        )
    # A free loopback port for the rendezvous (torch's store binds it right after).
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


def node_rank(cfg: TrainConfig) -> int:
    """This machine's node rank: 0 (the default) on the machine running the pipeline."""
    raw = os.environ.get(NODE_RANK_ENV, "0")
    try:
        rank = int(raw)
    except ValueError:
        rank = -1
    if not 0 <= rank < cfg.num_nodes:
        raise ConfigError(
            f"{NODE_RANK_ENV}={raw!r}: 0 on the machine running the pipeline, 1 to "
            f"{cfg.num_nodes - 1} on the others (train.num_nodes is {cfg.num_nodes})"
        )
    return rank


def _rendezvous(cfg: TrainConfig) -> list[str]:
    endpoint = _endpoint(cfg)
    if cfg.num_nodes == 1:
        return ["--rdzv-backend=c10d", f"--rdzv-endpoint={endpoint}"]
    host, _, port = endpoint.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"{ENDPOINT_ENV}={endpoint!r} is not HOST:PORT")
    return [f"--node-rank={node_rank(cfg)}", f"--master-addr={host}", f"--master-port={port}"]


def launch_env(base: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    # The ranks are not flow runs: with the run's id inherited each would report to it.
    for key in [k for k in env if k.startswith("PREFECT__")]:
        del env[key]
    env.setdefault("OMP_NUM_THREADS", "1")  # several ranks on one machine share its cores
    if ENDPOINT_ENV not in env:  # one machine: gloo talks over loopback only
        env.setdefault("GLOO_SOCKET_IFNAME", "lo")
    package_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    return env


def launch(cfg: TrainConfig, root: Path, metrics_file: Path) -> dict[str, Any]:
    """Run the train stage of the workspace at ``root`` on every rank; rank 0's metrics."""
    argv = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nnodes={cfg.num_nodes}",
        f"--nproc-per-node={cfg.devices}",
        *_rendezvous(cfg),
        "-m",
        "flywheel.stages.train",
        str(root),
    ]
    done = subprocess.run(argv, cwd=root, env=launch_env(), capture_output=True, text=True)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-20:])
        raise RuntimeError(
            f"distributed training failed (torchrun exit {done.returncode}):\n{tail}"
        )
    if cfg.num_nodes > 1 and node_rank(cfg) != 0:
        # This machine took part; the outputs are the first machine's (global rank 0).
        return {"processes": world_size(cfg), "node_rank": node_rank(cfg)}
    metrics: dict[str, Any] = json.loads(metrics_file.read_text())
    return metrics
