"""ONNX Runtime's transformer optimizer: a BERT-class graph with its blocks fused.

``onnxruntime.transformers.optimizer`` rewrites the exported encoder's subgraphs into ONNX
Runtime's fused operators: embeddings + LayerNorm into ``EmbedLayerNormalization``, each
self-attention block into one ``Attention``, residual add + LayerNorm into
``SkipLayerNormalization``, bias + GELU into ``BiasGelu``. It needs the encoder's head count
and hidden size to recognise the reshapes of the attention pattern; the family's spec
supplies them from the packaged model's config. The export must use eager attention: the
``sdpa`` path is not recognised and attention stays unfused (the recipe then says so).

The fused operators are ``com.microsoft`` contrib operators, which every ONNX Runtime build
(CPU and GPU packages alike) registers, so the file loads in a plain session
(:func:`flywheel.core.ort.make_session`), as the gate, the server and ``flywheel predict``
open it. Only ORT's basic, provider-independent rewrites are applied before fusing (the
optimizer's ``opt_level=1``); the session applies its own level when it loads the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx

from flywheel.core.errors import FlywheelError
from flywheel.core.ort import CPU, INPUT_NAME, OUTPUT_NAME, make_session

MODEL_TYPE = "bert"
# ORT's basic graph rewrites (constant folding, redundant nodes) before fusion: the level the
# optimizer recommends, and one that holds no execution-provider-specific operator.
OPT_LEVEL = 1
CONTRIB_DOMAIN = "com.microsoft"
LOADS_WITH = (
    "a plain onnxruntime.InferenceSession (flywheel.core.ort.make_session): the fused "
    "operators are com.microsoft contrib ops registered in every ONNX Runtime build"
)
_PARITY_BATCH = 256


class FusionMismatchError(FlywheelError):
    """The fused graph's outputs differ from the unfused graph's beyond the tolerance."""

    def __init__(self, max_abs_diff: float, atol: float) -> None:
        self.max_abs_diff = max_abs_diff
        self.atol = atol
        super().__init__(
            f"the fused transformer graph disagrees with the exported one: max |diff| "
            f"{max_abs_diff:.3g} > {atol:.3g}; drop the fused-* variants from compress.variants"
        )


def contrib_ops(path: Path) -> list[str]:
    """The ``com.microsoft`` operator types ``path`` holds."""
    graph = onnx.load(str(path), load_external_data=False).graph
    return sorted({n.op_type for n in graph.node if n.domain == CONTRIB_DOMAIN})


def fuse_transformer(src: Path, dst: Path, *, num_heads: int, hidden_size: int) -> dict[str, Any]:
    """Write ``src`` with its transformer blocks fused to ``dst``; returns the settings and
    which operators were fused."""
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    options = FusionOptions(MODEL_TYPE)
    # The network masks every pad id, wherever it stands; the default "mask index" (one
    # length per row) would assume right padding and attend to a pad id inside a sentence.
    options.use_raw_attention_mask(True)
    model = optimize_model(
        str(src),
        model_type=MODEL_TYPE,
        num_heads=num_heads,
        hidden_size=hidden_size,
        optimization_options=options,
        opt_level=OPT_LEVEL,
        use_gpu=False,
    )
    fused = {op: int(n) for op, n in model.get_fused_operator_statistics().items() if n}
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    model.save_model_to_file(str(dst))
    return {
        "optimizer": "onnxruntime.transformers.optimizer.optimize_model",
        "model_type": MODEL_TYPE,
        "num_heads": num_heads,
        "hidden_size": hidden_size,
        "opt_level": OPT_LEVEL,
        "attention_mask": "raw (batch, sequence) mask: exact for a pad id anywhere",
        "fused_operators": fused,
        "fully_fused": bool(model.is_fully_optimized()),
        "contrib_ops": contrib_ops(dst),
        "loads_with": LOADS_WITH,
    }


def fusion_parity(reference: Path, fused: Path, x: np.ndarray, atol: float) -> float:
    """Largest |fused - reference| output over ``x``, both opened as every consumer opens a
    deployed file; raises :class:`FusionMismatchError` beyond ``atol``."""
    # CPU: parity is a property of the graph, not of whichever GPU happens to be here.
    ref, got = make_session(reference, providers=[CPU]), make_session(fused, providers=[CPU])
    worst = 0.0
    for i in range(0, len(x), _PARITY_BATCH):
        batch = np.ascontiguousarray(x[i : i + _PARITY_BATCH])
        a = ref.run([OUTPUT_NAME], {INPUT_NAME: batch})[0]
        b = got.run([OUTPUT_NAME], {INPUT_NAME: batch})[0]
        worst = max(worst, float(np.max(np.abs(a - b))))
    if worst > atol:
        raise FusionMismatchError(worst, atol)
    return worst
