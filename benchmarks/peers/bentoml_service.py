"""BentoML 1.4 serving the same ONNX file as Flywheel, with ONNX Runtime and BentoML's
adaptive batching; run by ``benchmarks/serving_protocols.py`` in its own environment
(``benchmarks/.venvs/bentoml``) as ``bentoml serve bentoml_service:Peer``.

Set by the benchmark through the environment: ``PEER_MODEL`` (the .onnx file),
``PEER_KIND`` (``image``: normalised pixels with ``PEER_MEAN``/``PEER_STD``; ``text``:
``PEER_TOKENIZER``, a tokenizer.json, truncated to ``PEER_MAX_LEN`` and padded with
``PEER_PAD_ID``, as the sentiment family does), ``PEER_LABELS`` (comma-separated), and the
tuned setting ``BENTO_WORKERS`` (default 1, BentoML's own default).
"""

from __future__ import annotations

import os
from typing import Annotated, Any

import bentoml
import numpy as np
from bentoml.validators import DType, Shape

KIND = os.environ.get("PEER_KIND", "image")
LABELS = os.environ.get("PEER_LABELS", "").split(",")


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _answers(logits: np.ndarray) -> list[dict[str, Any]]:
    # The same answer Flywheel's /v1 gives: the label and each label's probability.
    return [
        {
            "label": LABELS[int(row.argmax())],
            "probabilities": {k: round(float(p), 6) for k, p in zip(LABELS, row, strict=True)},
        }
        for row in _softmax(logits)
    ]


@bentoml.service(
    workers=int(os.environ.get("BENTO_WORKERS", "1")), logging={"access": {"enabled": False}}
)
class Peer:
    def __init__(self) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(os.environ.get("PEER_THREADS", "0"))
        self.session = ort.InferenceSession(
            os.environ["PEER_MODEL"], opts, providers=["CPUExecutionProvider"]
        )
        self.mean = float(os.environ.get("PEER_MEAN", "0"))
        self.std = float(os.environ.get("PEER_STD", "1"))
        if KIND == "text":
            from tokenizers import Tokenizer

            self.tokenizer = Tokenizer.from_file(os.environ["PEER_TOKENIZER"])
            self.tokenizer.no_padding()
            self.tokenizer.enable_truncation(int(os.environ["PEER_MAX_LEN"]))
            self.pad_id = int(os.environ["PEER_PAD_ID"])

    @bentoml.api(batchable=True)
    def pixels(
        self, x: Annotated[np.ndarray, Shape((-1, 1, 8, 8)), DType("float32")]
    ) -> np.ndarray:
        batch = ((np.asarray(x, dtype=np.float32) / 255.0 - self.mean) / self.std).astype(
            np.float32
        )
        logits = self.session.run(None, {"input": batch})[0]
        return _softmax(logits).astype(np.float32)

    @bentoml.api(batchable=True)
    def texts(self, texts: list[str]) -> list[dict[str, Any]]:
        rows = [self.tokenizer.encode(t).ids for t in texts]
        ids = np.full((len(rows), max(len(r) for r in rows)), self.pad_id, dtype=np.int64)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = row
        return _answers(self.session.run(None, {"input": ids})[0])
