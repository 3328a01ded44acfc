"""The serving benchmark's baseline: what a first serving attempt usually looks like (FastAPI,
no batching, eager PyTorch), in its own process started by ``serving_servers.start_server``.
It imports nothing from ``benchmarks``, so it runs as a script from any folder."""

from __future__ import annotations

import argparse
import base64
import time
from pathlib import Path
from typing import Any

import numpy as np


def baseline_app(root: Path) -> Any:
    """What a first serving attempt usually looks like: no batching, eager PyTorch."""
    import torch
    from fastapi import Body, FastAPI
    from fastapi.responses import JSONResponse

    from flywheel.families.image.network import ConvNet
    from flywheel.families.image.pixels import PreprocessingSpec, preprocess_bytes

    spec = PreprocessingSpec.load(root / "preprocessing.json")
    net = ConvNet(spec.channels, spec.size, len(spec.labels))
    net.load_state_dict(torch.load(root / "weights.pt", weights_only=True))
    net.eval()
    app = FastAPI()

    @app.get("/readyz")
    def readyz() -> dict[str, bool]:
        return {"ready": True}

    @app.post("/v1/predict")
    def predict(payload: dict[str, Any] = Body(...)) -> JSONResponse:
        x = np.stack(
            [preprocess_bytes(base64.b64decode(i["b64"]), spec) for i in payload["instances"]]
        )
        start = time.perf_counter()
        with torch.inference_mode():
            probs = torch.softmax(net(torch.from_numpy(x)), dim=1).numpy()
        torch_ms = (time.perf_counter() - start) * 1000
        predictions = [
            {
                "label": spec.labels[int(row.argmax())],
                "probabilities": {
                    k: round(float(p), 6) for k, p in zip(spec.labels, row, strict=True)
                },
            }
            for row in probs
        ]
        return JSONResponse(
            {"predictions": predictions}, headers={"Server-Timing": f"torch;dur={torch_ms:.3f}"}
        )

    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--serve-baseline", type=Path, required=True, help="the workspace")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    import uvicorn

    uvicorn.run(
        baseline_app(args.serve_baseline), host="127.0.0.1", port=args.port, access_log=False
    )


if __name__ == "__main__":
    main()
