"""Per-instance statistics of what a model receives and answers, the columns drift is
tested on: images by size, brightness, contrast and channel means; texts by length and
the share of their words the reference vocabulary knows; tables by their own feature
columns; every model by its prediction (class, or value).

They are computed from instances in their stored form (what the prediction log keeps,
:func:`flywheel.monitor.prediction_log.stored_entry`), so the reference (the training
split) and production go through the one same function.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass
class Columns:
    numeric: dict[str, list[float]] = field(default_factory=dict)
    categorical: dict[str, list[str]] = field(default_factory=dict)

    def add_numeric(self, name: str, value: Any) -> None:
        number = _number(value)
        if number is not None:
            self.numeric.setdefault(name, []).append(number)

    def add_category(self, name: str, value: Any) -> None:
        self.categorical.setdefault(name, []).append("" if value is None else str(value))


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _text_of(value: Any) -> str:
    if isinstance(value, dict):
        return " ".join(str(value.get(k) or "") for k in ("title", "text"))
    return str(value)


def _image(out: Columns, data: bytes) -> None:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        pixels = np.asarray(image.convert("RGB" if image.mode not in ("L", "1") else "L"))
    values = pixels.astype(np.float64) / 255.0
    out.add_numeric("width", pixels.shape[1])
    out.add_numeric("height", pixels.shape[0])
    out.add_numeric("brightness", float(values.mean()))
    out.add_numeric("contrast", float(values.std()))
    if values.ndim == 3:
        for i, channel in enumerate("rgb"):
            out.add_numeric(f"mean_{channel}", float(values[..., i].mean()))


def instance_features(
    task: str, entries: Iterable[dict[str, Any]], vocabulary: set[str] | None = None
) -> Columns:
    """Columns over stored-form entries (``{"suffix", "json"|"b64"}``) of ``task``."""
    import base64

    out = Columns()
    for entry in entries:
        if task == "image_classification":
            _image(out, base64.b64decode(entry["b64"]))
        elif task == "tabular_regression":
            for name, value in dict(entry.get("json") or {}).items():
                number = _number(value)
                if number is not None or value is None:
                    out.add_numeric(name, value)
                else:
                    out.add_category(name, value)
        else:
            text = _text_of(entry.get("json"))
            tokens = words(text)
            out.add_numeric("n_chars", len(text))
            out.add_numeric("n_words", len(tokens))
            if vocabulary is not None:
                known = sum(t in vocabulary for t in tokens)
                out.add_numeric("vocab_coverage", known / len(tokens) if tokens else 1.0)
    return out


def prediction_features(out: Columns, predictions: Iterable[dict[str, Any]]) -> Columns:
    """The prediction column: ``prediction`` (class) or ``prediction_value`` (regression)."""
    for prediction in predictions:
        if "label" in prediction:
            out.add_category("prediction", prediction["label"])
        elif "value" in prediction:
            out.add_numeric("prediction_value", prediction["value"])
    return out


def vocabulary_of(entries: Iterable[dict[str, Any]], size: int) -> list[str]:
    """The ``size`` most frequent words of text entries (the reference vocabulary)."""
    from collections import Counter

    counts: Counter[str] = Counter()
    for entry in entries:
        counts.update(words(_text_of(entry.get("json"))))
    return [w for w, _ in counts.most_common(size)]
