"""The Optimum peer's own environment: the pinned requirements, a virtual environment made
(or remade) from them and checked against them, and the worker run in it on the workspace's
encoder written in Hugging Face format."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from benchmarks.common import HERE, PROJECT

REQUIREMENTS = HERE / "peers" / "optimum-requirements.txt"
WORKER = HERE / "peers" / "optimum_worker.py"
VENV = HERE / ".venvs" / "optimum"
WORK = HERE / ".peers" / "optimum"
STAMP = ".flywheel-requirements.sha256"
# The modules the Optimum environment must import; the first install is alone (torch).
FIRST = ("torch",)


def parse_pins(text: str) -> dict[str, str]:
    """``name==version`` lines of a requirements file (comments and blanks skipped); names
    normalised as pip does (case, ``_`` and ``.`` as ``-``)."""
    pins: dict[str, str] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        if not sep or not version.strip():
            raise ValueError(f"requirement {line!r} is not pinned as name==version")
        pins[_normal(name)] = version.strip()
    return pins


def _normal(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(".", "-")


def first_installs(pins: Mapping[str, str]) -> list[str]:
    """What pip installs before the rest: torch alone, so that the resolver never pulls a
    CUDA build for a requirement that merely names torch."""
    return [f"{name}=={pins[name]}" for name in FIRST if name in pins]


def pin_mismatches(pins: Mapping[str, str], freeze: str) -> list[str]:
    """The pins a ``pip freeze`` output does not satisfy; a local label (``+cpu``) is ignored."""
    installed = {}
    for line in freeze.splitlines():
        name, sep, version = line.partition("==")
        if sep:
            installed[_normal(name)] = version.split("+", 1)[0].strip()
    return [
        f"{name}=={want} (found {installed.get(name, 'nothing')})"
        for name, want in pins.items()
        if installed.get(name) != want
    ]


def _run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, text=True, capture_output=True, check=False, **kwargs)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr)[-3000:]
        raise RuntimeError(f"{' '.join(cmd[:4])} ... exited {proc.returncode}: {tail}")
    return proc


def ensure_venv(
    venv: Path, requirements: Path = REQUIREMENTS, managed: Path = VENV
) -> tuple[Path, dict[str, Any]]:
    """A peer environment's interpreter (Optimum's by default), made (or remade, when the pins
    changed) from ``requirements`` when it is the ``managed`` one; an environment found with
    other versions is refused."""
    text = requirements.read_text()
    pins = parse_pins(text)
    digest = hashlib.sha256(text.encode()).hexdigest()
    python = venv / "bin" / "python"
    t0 = time.perf_counter()
    created = False
    stamp = venv / STAMP
    if venv == managed and (not stamp.is_file() or stamp.read_text().strip() != digest):
        shutil.rmtree(venv, ignore_errors=True)
        _run([sys.executable, "-m", "venv", str(venv)])
        pip = [str(python), "-m", "pip", "install", "-q"]
        if first_installs(pins):
            _run([*pip, *first_installs(pins)])
        _run([*pip, "-r", str(requirements)])
        stamp.write_text(digest + "\n")
        created = True
    if not python.is_file():
        raise FileNotFoundError(f"{python} not found: --venv must name a virtual environment")
    freeze = _run([str(python), "-m", "pip", "freeze"]).stdout
    wrong = pin_mismatches(pins, freeze)
    if wrong:
        raise RuntimeError(f"{venv} does not hold the pinned versions: {', '.join(wrong)}")
    shown = venv.relative_to(PROJECT) if venv.is_relative_to(PROJECT) else venv
    return python, {"path": str(shown), "created": created,
                    "seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip


def write_hf_model(net: Any, out: Path) -> Path:
    """The fine-tuned encoder in Hugging Face format, with the packaged tokenizer files."""
    from flywheel.families.sentiment.package import model_dir

    shutil.rmtree(out, ignore_errors=True)
    net.encoder.save_pretrained(str(out))
    for name in ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
        if (model_dir() / name).is_file():
            shutil.copy2(model_dir() / name, out / name)
    return out


def run_worker(python: Path, model: Path, out: Path, preset: str) -> dict[str, Any]:
    shutil.rmtree(out, ignore_errors=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "HF_HUB_DISABLE_TELEMETRY": "1", "PYTHONPATH": ""}  # fmt: skip
    cmd = [str(python), str(WORKER), "--model", str(model), "--out", str(out), "--preset", preset]
    _run(cmd, env=env, timeout=1800)
    return dict(json.loads((out / "manifest.json").read_text()))
