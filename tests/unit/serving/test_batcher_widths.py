"""Requests whose rows differ only in width share a batch when the family pads (sentiment:
a sentence's token count varies), and get the answers they get alone; other families'
rows of different shapes never share one."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
from tests.served_models import registry_with

from flywheel.release.registry import Registry
from flywheel.serving.batcher import MicroBatcher
from flywheel.serving.model_holder import LoadedModel, load_model
from flywheel.serving.telemetry import ServingMetrics

TEXTS = ["good", "a much longer sentence about a good day out in the sun"]


def _model(task: str, root: Path) -> LoadedModel:
    registry_with(task, root)
    registry = Registry(root / "registry")
    version = registry.production_version()
    assert version is not None
    return load_model(registry, version)


def _answers(model: LoadedModel, row_sets: list[np.ndarray]) -> tuple[list[list[float]], list[int]]:
    async def main() -> tuple[list[list[float]], list[int]]:
        batcher = MicroBatcher(max_batch=64, max_wait_ms=50.0, metrics=ServingMetrics())
        batcher.start()
        try:
            async with batcher.admission():  # all queued before the collector may take them
                futures = [batcher.enqueue(model, rows) for rows in row_sets]
            results = await asyncio.gather(*futures)
        finally:
            await batcher.close()
        probs = [list(p.probabilities.values()) for r in results for p in r.predictions]
        return probs, [r.batch_size for r in results]

    return asyncio.run(main())


def test_sentences_of_different_lengths_share_a_batch(tmp_path: Path) -> None:
    pytest.importorskip("tokenizers")
    model = _model("sentiment", tmp_path)
    assert model.decoder.pad_value is not None
    rows = [model.decoder.decode([text]) for text in TEXTS]
    assert rows[0].shape[1] < rows[1].shape[1]
    together, sizes = _answers(model, rows)
    alone = [_answers(model, [r])[0][0] for r in rows]
    assert sizes == [2, 2]  # one batch for both
    np.testing.assert_allclose(together, alone, atol=1e-6)


def test_rows_of_other_shapes_are_batched_apart_without_padding(tmp_path: Path) -> None:
    model = _model("image_classification", tmp_path)
    assert model.decoder.pad_value is None
    shape = model.decoder.probe(1).shape
    narrow = np.zeros((1, *shape[1:-1], shape[-1] - 1), dtype=np.float32)
    wide = np.zeros(shape, dtype=np.float32)
    _, sizes = _answers(model, [narrow, wide])
    assert sizes == [1, 1]  # never padded together: each went alone
    _, sizes = _answers(model, [wide, wide])
    assert sizes == [2, 2]
